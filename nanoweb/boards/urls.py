from django.urls import path

from nanoweb.boards import views

urlpatterns = [
    path("boards", views.board_list, name="board_list"),
    path("boards/add", views.board_add, name="board_add"),
    path("boards/<int:pk>", views.board_page, name="board"),
    path("boards/<int:pk>/edit", views.board_edit, name="board_edit"),
    path("boards/<int:pk>/delete", views.board_delete, name="board_delete"),
    path("boards/<int:pk>/cover", views.board_cover, name="board_cover"),
    path("boards/<int:pk>/remove", views.board_remove, name="board_remove"),
    path("boards/<int:pk>/download", views.board_download, name="board_download"),
]
