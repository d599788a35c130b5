from django.contrib import admin

from readerstudy.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Background jobs as the coordinator sees them: a failed one says why (including a worker
    that died too often: the dead letter), a running one which worker holds it."""

    list_display = ["__str__", "study", "status", "done", "total", "attempts", "worker", "heartbeat_at", "message", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["message", "study__name"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # jobs are started by the actions that need them
