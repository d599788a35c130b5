from django.urls import path

from readerstudy.accounts import views as accounts
from readerstudy.console import archive_views, source_views, views

app_name = "console"

urlpatterns = [
    # Studies: builder, lifecycle, preparation, monitoring (console/views.py)
    path("", views.dashboard, name="dashboard"),
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
