from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from readerstudy.accounts import views as accounts
from readerstudy.analysis import views as analysis
from readerstudy.reading import views as reading

urlpatterns = [
    path("", reading.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("studies/<int:study_id>/", reading.instructions, name="instructions"),
    path("studies/<int:study_id>/read/", reading.read, name="read"),
    path("studies/<int:study_id>/read/<int:position>/", reading.review, name="review"),
    path("studies/<int:study_id>/answer/<int:position>/", reading.answer, name="answer"),
    path("img/<str:token>", reading.image, name="image"),
    path("studies/<int:study_id>/report/", analysis.report, name="report"),
    path("studies/<int:study_id>/report.json", analysis.report_json, name="report_json"),
    path("studies/<int:study_id>/answers.csv", analysis.answers_csv, name="answers_csv"),
    path("studies/<int:study_id>/provenance.json", analysis.provenance_json, name="provenance_json"),
    path("studies/<int:study_id>/ratings.imrmc", analysis.answers_imrmc, name="answers_imrmc"),
    path("studies/<int:study_id>/power/", analysis.power, name="power"),
    path("console/", include("readerstudy.console.urls")),
    # Readers: invitations and password reset (engineer 10b)
    path("invite/<str:token>/", accounts.accept_invitation, name="accept_invitation"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
]
