"""The console's admin templates (base_site.html with its stylesheet and live.js, the status
home page), as an app of their own: listed before django.contrib.admin in INSTALLED_APPS so its
`admin/` templates override the admin's, while `opsconsole` itself keeps its place after the
apps whose signals it listens to (django-axes)."""
