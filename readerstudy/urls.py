from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from readerstudy.accounts import views as accounts
from readerstudy.analysis import views as analysis
from readerstudy.reading import preview as reading_preview
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
    # Analysis (issue 13): summary and per-case CSVs, the analyst's case gallery images.
    path("studies/<int:study_id>/summary.csv", analysis.report_csv, name="report_csv"),
    path("studies/<int:study_id>/cases.csv", analysis.cases_csv, name="cases_csv"),
    path("studies/<int:study_id>/cases/<int:case_number>/<str:kind>.png", analysis.case_image, name="case_image"),
    path("console/", include("readerstudy.console.urls")),
    # Readers: invitations and password reset (engineer 10b)
    path("invite/<str:token>/", accounts.accept_invitation, name="accept_invitation"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    # Reading room: cases swapped in by the page, and the coordinator's preview as a reader (issue 14)
    path("studies/<int:study_id>/case/", reading.next_case, name="next_case"),
    path("studies/<int:study_id>/preview/", reading_preview.preview, name="preview"),
    path("studies/<int:study_id>/preview/case/<int:position>/", reading_preview.preview_case, name="preview_case"),
    path("studies/<int:study_id>/preview/answer/<int:position>/", reading_preview.preview_answer, name="preview_answer"),
    path("studies/<int:study_id>/preview/end/", reading_preview.preview_end, name="preview_end"),
]
