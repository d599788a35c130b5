from django.urls import path

from readerstudy.console import views

app_name = "console"

urlpatterns = [
    # Studies: builder, lifecycle, preparation, monitoring (console/views.py)
    path("", views.dashboard, name="dashboard"),
    # Archive: pools, uploads, galleries
    # Synthetic sources: registration, sample grids
]
