"""Date and time formats per language (``FORMAT_MODULE_PATH``), on top of Django's own.

One date format per language, used for every date the pages show (``DATE_FORMAT`` and
``SHORT_DATE_FORMAT`` are the same), and the same date with the time and its UTC offset for every
moment (``DATETIME_FORMAT``, ``SHORT_DATETIME_FORMAT``). Times are shown in the current time zone
(``TIME_ZONE``, Asia/Shanghai by default); ``scf.display`` writes the same local time for CSV.
"""
