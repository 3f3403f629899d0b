from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    """Django's renderer, with our field group: label, widget, help, then errors, in one box."""

    field_template_name = "forms/field.html"
