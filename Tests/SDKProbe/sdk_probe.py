#!/usr/bin/env python3
"""Walks a running rbacwatch simulator with Genesys's official Python SDK.

Usage: sdk_probe.py READY_JSON   (the line `rbacwatch simulate` prints)

Every read endpoint the simulator serves is called through the SDK, every page followed, and the
write endpoints exercised with the admin client. The probe fails (exit 1) on any HTTP error, any
exception while deserialising, and any enum value the SDK does not know (it maps those to
"outdated_sdk_version"). The SDK crashes on a `null` enum, so a simulator that sent one fails here.
"""

import json
import sys
import time

import PureCloudPlatformClientV2 as gc
from PureCloudPlatformClientV2.rest import ApiException

ready = json.loads(sys.argv[1])
failures = []
calls = 0


def walk_models(value, path="$"):
    """Yields (path, value) for every leaf of a model tree."""
    if hasattr(value, "swagger_types"):
        for attribute in value.swagger_types:
            yield from walk_models(getattr(value, attribute), f"{path}.{attribute}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_models(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_models(item, f"{path}.{key}")
    else:
        yield path, value


def call(name, function, *args, **kwargs):
    global calls
    calls += 1
    try:
        result = function(*args, **kwargs)
    except ApiException as error:
        failures.append(f"{name}: HTTP {error.status} {error.reason}: {str(error.body)[:200]}")
        return None
    except Exception as error:  # deserialisation errors surface here
        failures.append(f"{name}: {type(error).__name__}: {error}")
        return None
    for path, leaf in walk_models(result):
        if leaf == "outdated_sdk_version":
            failures.append(f"{name}: unknown enum value at {path}")
    return result


def client(client_id, secret):
    login = gc.ApiClient(host=ready["loginBaseUrl"])
    login.gateway_configuration = None
    login.get_client_credentials_token(client_id, secret)
    api = gc.ApiClient(host=ready["apiBaseUrl"])
    api.gateway_configuration = None
    api.access_token = login.access_token
    return api


def pages(name, function, **kwargs):
    """Follows pageNumber paging to the end; returns all entities."""
    entities, number = [], 1
    while True:
        page = call(f"{name} page {number}", function, page_number=number, **kwargs)
        if page is None:
            return entities
        entities.extend(page.entities or [])
        if not page.next_uri:
            return entities
        number += 1


api = client(ready["clientId"], ready["clientSecret"])
admin = client(ready["adminClientId"], ready["adminClientSecret"])
users_api, authz, groups_api = gc.UsersApi(api), gc.AuthorizationApi(api), gc.GroupsApi(api)
teams_api, oauth, audit = gc.TeamsApi(api), gc.OAuthApi(api), gc.AuditApi(api)

call("tokens/me", gc.TokensApi(api).get_tokens_me)
call("organizations/me", gc.OrganizationApi(api).get_organizations_me)

users = pages("users", users_api.get_users, page_size=100, expand=["authorization", "groups", "team", "dateLastLogin"], state="any")
if users:
    call("user", users_api.get_user, users[0].id, expand=["groups", "team"], state="any")
    call("user roles", users_api.get_user_roles, users[0].id)
    call("users by id", users_api.get_users, id=[u.id for u in users[:5]], state="any")

roles = pages("roles", authz.get_authorization_roles, page_size=100, user_count=False)
for role in roles[:15]:
    call(f"role {role.name}", authz.get_authorization_role, role.id, user_count=True)
    pages(f"subjectgrants {role.name}", authz.get_authorization_role_subjectgrants, role_id=role.id, page_size=100)
    call(f"role users {role.name}", authz.get_authorization_role_users, role.id, page_size=25, page_number=1)

divisions = pages("divisions", authz.get_authorization_divisions, page_size=100, object_count=True)
call("home division", authz.get_authorization_divisions_home)
if divisions:
    call("division grants", authz.get_authorization_division_grants, divisions[0].id, page_size=100, page_number=1)

for user in users[:10]:
    call("subject (user)", authz.get_authorization_subject, user.id, include_duplicates=True)

groups = pages("groups", groups_api.get_groups, page_size=100)
for group in groups[:10]:
    call("group", groups_api.get_group, group.id)
    pages(f"group members {group.name}", groups_api.get_group_members, group_id=group.id, page_size=100, expand=["team"])
    call("group individuals", groups_api.get_group_individuals, group.id)
    if group.roles_enabled:
        call("subject (group)", authz.get_authorization_subject, group.id)

after, team_pages, teams = None, 0, []
while True:
    page = call("teams", teams_api.get_teams, page_size=25, after=after) if after else call("teams", teams_api.get_teams, page_size=25)
    team_pages += 1
    if page is None:
        break
    teams.extend(page.entities or [])
    if not page.next_uri:
        break
    after = page.next_uri.split("after=")[1].split("&")[0]
for team in teams[:5]:
    call("team", teams_api.get_team, team.id)
    call("team members", teams_api.get_team_members, team.id, page_size=25, expand=["entities"])

call("oauth clients", oauth.get_oauth_clients)

now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
query = gc.AuditRealtimeQueryRequest()
query.interval = f"{hour_ago}/{now}"
query.service_name = "PeoplePermissions"
flt = gc.AuditQueryFilter()
flt.pcProperty = "EntityType"
flt.value = "Role"
query.filters = [flt]
query.page_number = 1
query.page_size = 100
call("audit realtime", audit.post_audits_query_realtime, query)
call("audit servicemapping", audit.get_audits_query_servicemapping)
call("audit realtime servicemapping", audit.get_audits_query_realtime_servicemapping)
async_query = gc.AuditQueryExecutionStatusResponse  # noqa: F841 (the type the SDK returns)
body = gc.AuditQueryRequest()
body.interval = f"{hour_ago}/{now}"
body.service_name = "PeoplePermissions"


def await_query(label, status):
    """Polls an async audit query until it succeeds, as a client must (Queued, Running, Succeeded)."""
    states = [status.state]
    for _ in range(10):
        if states[-1] == "Succeeded":
            return True
        polled = call(f"{label} status", audit.get_audits_query_transaction_id, status.id)
        if polled is None:
            return False
        states.append(polled.state)
    failures.append(f"{label}: never succeeded ({' -> '.join(map(str, states))})")
    return False


status = call("audit async query", audit.post_audits_query, body)
if status is not None and await_query("audit async", status):
    call("audit async results", audit.get_audits_query_transaction_id_results, status.id, page_size=100)

# Writes, with the admin client.
admin_authz, admin_groups = gc.AuthorizationApi(admin), gc.GroupsApi(admin)
create = gc.DomainOrganizationRoleCreate()
create.name = "SDK Probe Role"
create.description = "made by the SDK probe"
create.permissions = ["routing:queue:view", "admin"]
made = call("create role", admin_authz.post_authorization_roles, create)
if made is not None:
    update = gc.DomainOrganizationRoleUpdate()
    update.name = "SDK Probe Role (edited)"
    policy = gc.DomainPermissionPolicy()
    policy.domain = "routing"
    policy.entity_name = "queue"
    policy.action_set = ["view", "edit"]
    update.permission_policies = [policy]
    call("update role", admin_authz.put_authorization_role, made.id, update)
    if users and divisions:
        call("grant add", admin_authz.post_authorization_subject_division_role, users[0].id, divisions[0].id, made.id, subject_type="PC_USER")
        call("grant remove", admin_authz.delete_authorization_subject_division_role, users[0].id, divisions[0].id, made.id)
        grants = gc.RoleDivisionGrants()
        rd = gc.RoleDivision()
        rd.role_id, rd.division_id = made.id, "*"
        grants.grants = [rd]
        call("bulkadd", admin_authz.post_authorization_subject_bulkadd, users[1].id, grants, subject_type="PC_USER")
        call("bulkremove", admin_authz.post_authorization_subject_bulkremove, users[1].id, grants)
    call("delete role", admin_authz.delete_authorization_role, made.id)
role_groups = [g for g in groups if g.roles_enabled]
if role_groups and len(users) > 2:
    group = call("group (version)", admin_groups.get_group, role_groups[0].id)
    if group is not None:
        update = gc.GroupMembersUpdate()
        update.member_ids = [users[-1].id]
        update.version = group.version
        call("group members add", admin_groups.post_group_members, group.id, update)
        call("group members remove", admin_groups.delete_group_members, group.id, users[-1].id)
if users and len(divisions) > 1:
    call("division move", admin_authz.post_authorization_division_object, divisions[1].id, "USER", [users[2].id])

# The writes above were audited: the SDK must read those AuditLogMessages (realtime and async).
later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
audited = gc.AuditRealtimeQueryRequest()
audited.interval = f"{hour_ago}/{later}"
audited.page_number = 1
audited.page_size = 100
found = call("audit realtime after writes", audit.post_audits_query_realtime, audited, expand=["user"])
if found is not None:
    if not found.entities:
        failures.append("audit realtime after writes: no events")
    for event in found.entities or []:
        if event.entity is None or event.action is None or event.event_date is None or event.service_name is None:
            failures.append(f"audit event {event.id} lacks entity, action, eventDate or serviceName")
            break
audited_async = gc.AuditQueryRequest()
audited_async.interval = f"{hour_ago}/{later}"
status = call("audit async query after writes", audit.post_audits_query, audited_async)
if status is not None and await_query("audit async after writes", status):
    results = call("audit async results after writes", audit.get_audits_query_transaction_id_results, status.id, page_size=5)
    if results is not None and (not results.entities or results.cursor is None):
        failures.append("audit async results after writes: expected a first page of 5 and a cursor")

# The Notifications API: a channel, its audit topics, the listing and the liveness check.
notifications = gc.NotificationsApi(api)
channel = call("notification channel", notifications.post_notifications_channels)
if channel is not None:
    if not channel.connect_uri or channel.expires is None:
        failures.append("notification channel: no connectUri or expires")
    topics = []
    for role in roles[:3]:
        topic = gc.ChannelTopic()
        topic.id = f"v2.audits.entitytype.Role.entityid.{role.id}"
        topics.append(topic)
    put = call("notification subscriptions put", notifications.put_notifications_channel_subscriptions, channel.id, topics, ignore_errors=True)
    if put is not None and [t.state for t in put.entities or []] != ["Permitted"] * len(topics):
        failures.append(f"notification subscriptions put: states {[t.state for t in put.entities or []]}")
    listed = call("notification subscriptions", notifications.get_notifications_channel_subscriptions, channel.id)
    if listed is not None and len(listed.entities or []) != len(topics):
        failures.append("notification subscriptions: not the topics put")
    call("notification channel head", notifications.head_notifications_channel, channel.id)
    channels = call("notification channels", notifications.get_notifications_channels)
    if channels is not None and channel.id not in [c.id for c in channels.entities or []]:
        failures.append("notification channels: the new channel is not listed")
    call("notification subscriptions delete", notifications.delete_notifications_channel_subscriptions, channel.id)

# Errors must come back as ApiException with the right status, not as crashes.
bad = gc.ApiClient(host=ready["apiBaseUrl"])
bad.gateway_configuration = None
bad.access_token = "not-a-token"
try:
    gc.UsersApi(bad).get_users(page_size=1)
    failures.append("a bad token was accepted")
except ApiException as error:
    if error.status != 401:
        failures.append(f"a bad token gave HTTP {error.status}, expected 401")
try:
    authz.get_authorization_role("00000000-0000-0000-0000-000000000000")
    failures.append("an unknown role id was found")
except ApiException as error:
    if error.status != 404:
        failures.append(f"an unknown role gave HTTP {error.status}, expected 404")

print(json.dumps({"calls": calls, "users": len(users), "roles": len(roles), "groups": len(groups),
                  "teams": len(teams), "divisions": len(divisions), "failures": failures}))
sys.exit(1 if failures else 0)
