from django.urls import path

from readerstudy.console import views

app_name = "console"

urlpatterns = [
    # Studies: builder, lifecycle, preparation, monitoring (console/views.py)
    path("", views.dashboard, name="dashboard"),
    path("studies/new/<str:design>/", views.study_create, name="study_create"),
    path("studies/<int:study_id>/", views.study_detail, name="study"),
    path("studies/<int:study_id>/edit/", views.study_edit, name="study_edit"),
    path("studies/<int:study_id>/prepare/", views.study_prepare, name="study_prepare"),
    path("studies/<int:study_id>/progress.json", views.study_progress, name="study_progress"),
    path("studies/<int:study_id>/open/", views.study_open, name="study_open"),
    path("studies/<int:study_id>/close/", views.study_close, name="study_close"),
    path("studies/<int:study_id>/archive/", views.study_archive, name="study_archive"),
    path("studies/<int:study_id>/clone/", views.study_clone, name="study_clone"),
    path("studies/<int:study_id>/remind/", views.study_remind, name="study_remind"),
    path("studies/<int:study_id>/exclude/", views.study_exclude, name="study_exclude"),
    # Archive: pools, uploads, galleries
    # Synthetic sources: registration, sample grids
]
