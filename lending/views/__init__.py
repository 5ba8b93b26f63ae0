"""The web pages of the three front ends: agent portal, enterprise dashboard, risk review queue.

Server-rendered templates with htmx for the parts that update in place. Every page reads
through the same selectors and writes through the same services as the API; no rule lives here.
"""
