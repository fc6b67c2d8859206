from django.urls import path

from djproj import views

urlpatterns = [
    path("", views.index),
    path("echo/", views.echo),
]
