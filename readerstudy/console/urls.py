from django.urls import path

from readerstudy.accounts import views as accounts
from readerstudy.console import archive_views, source_views, views

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
    path("archive/", archive_views.archive, name="archive"),
    path("archive/imports/<int:job_id>/", archive_views.import_job, name="import_job"),
    path("archive/pools/<int:pool_id>/", archive_views.gallery, name="gallery"),
    path("archive/thumbnails/<str:token>.png", archive_views.thumbnail, name="thumbnail"),
    path("jobs/<int:job_id>/progress.json", archive_views.job_progress, name="job_progress"),
    # Synthetic sources: registration, sample grids
    path("sources/", source_views.sources, name="sources"),
    path("sources/new/", source_views.register, name="register_source"),
    path("sources/<int:generator_id>/", source_views.source, name="source"),
    # Readers: invitations, reader groups
    path("readers/", accounts.readers, name="readers"),
    path("sources/<int:generator_id>/samples/<int:job_id>/<int:number>.png", source_views.sample, name="source_sample"),
]
