"""Link the real-time statistics page (realtime.views) from the admin index."""

from django.contrib import admin

admin.site.index_template = "realtime/admin_index.html"
