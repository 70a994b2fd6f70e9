from django.urls import path

from billing import views

urlpatterns = [path("orders/", views.place_order)]
