from django.contrib import admin

from .models import Bank

admin.site.register(Bank)
