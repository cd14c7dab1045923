"""openstacksdk (Debian's python3-openstacksdk) against Gureum's identity API.

Reads the cloud from OS_CLIENT_CONFIG_FILE (cloud "gureum"), exercises the calls SDK
users make, prints one JSON line of what it saw, and exits non-zero on any error.
"""
import json
import sys

import openstack

conn = openstack.connect(cloud="gureum")
seen = {}
seen["token_project"] = conn.current_project_id is not None
domain = conn.identity.create_domain(name="sdk-domain", description="made by openstacksdk")
project = conn.identity.create_project(name="sdk-project", domain_id=domain.id, description="p")
user = conn.identity.create_user(name="sdk-user", domain_id=domain.id, password="sdk-pass", email="sdk@example.org")
member = conn.identity.find_role("member")
conn.identity.assign_project_role_to_user(project, user, member)
seen["has_role"] = conn.identity.validate_user_has_project_role(project, user, member)
seen["projects"] = sorted(p.name for p in conn.identity.projects(domain_id=domain.id))
seen["user_email"] = conn.identity.get_user(user.id).email
seen["services"] = sorted(s.type for s in conn.identity.services())

# The new user authenticates through the SDK and sees only its own project.
# (No clouds.yaml or OS_* variables: they would mix the admin's domain names into these.)
as_user = openstack.connect(
    load_yaml_config=False, load_envvars=False,
    auth_url=conn.config.config["auth"]["auth_url"], username="sdk-user", password="sdk-pass",
    user_domain_id=domain.id, project_name="sdk-project", project_domain_id=domain.id,
)
seen["user_project"] = as_user.current_project_id == project.id
try:
    list(as_user.identity.users())
    seen["list_users_as_member"] = 200
except openstack.exceptions.HttpException as e:
    seen["list_users_as_member"] = e.status_code

conn.identity.unassign_project_role_from_user(project, user, member)
conn.identity.delete_user(user)
conn.identity.delete_project(project)
conn.identity.update_domain(domain, enabled=False)
conn.identity.delete_domain(domain)
seen["domain_gone"] = conn.identity.find_domain("sdk-domain") is None
json.dump(seen, sys.stdout)
