from django.contrib import admin

from readerstudy.archive.models import Image, Pool


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["name", "presentation_size", "bit_depth", "created_at"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["token", "pool", "source", "width", "height", "byte_size", "created_at"]
    list_filter = ["pool", "source"]
    readonly_fields = [f.name for f in Image._meta.fields]

    def has_add_permission(self, request):
        return False
