"""Seeding: building the database queries are measured on, once, into a reusable template.

`seed` builds and reuses templates from schema and data items, `kit` helps seed functions write
realistic, skewed data fast, and `templates` lists and prunes the templates a server holds.
"""
