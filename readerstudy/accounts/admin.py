from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from readerstudy.accounts.models import Profile


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False


class UserWithProfileAdmin(UserAdmin):
    inlines = [ProfileInline]
    list_display = ["username", "email", "profile__role", "profile__specialty", "is_staff"]


admin.site.unregister(User)
admin.site.register(User, UserWithProfileAdmin)
