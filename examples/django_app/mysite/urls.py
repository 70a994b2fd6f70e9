from django.urls import path
from shop import views

urlpatterns = [
    path("signup/", views.signup),
    path("jobs/<str:job_id>/", views.job_status),
]
