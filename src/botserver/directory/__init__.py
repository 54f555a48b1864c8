"""Directories: the OpenID Connect client, the embedded provider and SCIM writes."""
