from django.urls import path

from nanoweb.studio import staff, views

urlpatterns = [
    path("", views.studio, name="studio"),
    path("generate", views.generate, name="generate"),
    path("generate/options", views.form_options, name="form_options"),
    path("generations/<int:pk>", views.generation_detail, name="generation_detail"),
    path("generations/<int:pk>/card", views.generation_card, name="generation_card"),
    path("live/cards", views.live_updates, {"view": "card"}, name="live_cards"),
    path("live/detail", views.live_updates, {"view": "detail"}, name="live_detail"),
    path("generations/<int:pk>/cancel-set", views.cancel_set, name="cancel_set"),
    path("generations/<int:pk>/again", views.try_again, name="try_again"),
    path("generations/<int:pk>/cancel", views.generation_cancel, name="generation_cancel"),
    path("generations/<int:pk>/rate", views.rate, name="rate"),
    path("generations/<int:pk>/private", views.toggle_private, name="toggle_private"),
    path("generations/<int:pk>/delete", views.delete_generation, name="delete_generation"),
    path("gallery", views.gallery, name="gallery"),
    path("theme", views.set_theme, name="theme"),
    path("gallery/download", views.download_zip, name="download_zip"),
    path("prompts", views.prompt_library, name="prompt_library"),
    path("prompts/<int:pk>/edit", views.edit_preset, name="edit_preset"),
    path("prompts/<int:pk>/delete", views.delete_preset, name="delete_preset"),
    path("images/<int:pk>/original", views.image_file, {"variant": "original"}, name="image_original"),
    path("images/<int:pk>/display", views.image_file, {"variant": "display"}, name="image_display"),
    path("images/<int:pk>/thumbnail", views.image_file, {"variant": "thumbnail"}, name="image_thumbnail"),
    path("generations/<int:pk>/references/<int:position>", views.generation_reference, name="generation_reference"),
    path("credits/review/people/<int:user_id>", staff.person_generations, name="person_generations"),
]
