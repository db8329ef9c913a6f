"""The one door to storage: every aggregate's statements, imported from its own module.

Writes are synchronous functions on a ``Conn`` run by the single writer
(``backend.db.writer``) or the CLI; reads are ``async`` functions on the read connection.
Each aggregate lives in its own module (``accounts``, ``projects``, ``experiments``,
``series``, ``events``, ``device_logins``, ``ssh_keys``; ``watches`` is imported directly
by its services); callers use ``repository.<name>`` so the modules can change behind it. Everything
imported here is re-exported (ruff's unused-import check is off for this file).
"""

from __future__ import annotations

from backend.db.accounts import (
    Principal,
    UserAuth,
    all_usernames,
    count_users,
    delete_all_tokens,
    delete_client_token,
    delete_other_sessions,
    delete_profile_token,
    delete_session,
    insert_session,
    insert_token,
    insert_user,
    login_address_known,
    remember_login_address,
    session_principal,
    set_password,
    token_info_sync,
    token_principal,
    token_principal_sync,
    touch_token,
    user_by_id,
    user_by_name,
    user_by_name_sync,
    user_tokens,
)
from backend.db.common import (
    ts,
)
from backend.db.connection import Conn
from backend.db.device_logins import (
    DeviceLogin,
    approve_device_login,
    delete_device_login,
    device_login_by_device_code,
    device_login_by_user_code,
    failed_approvals_since,
    insert_device_login,
    pending_device_logins,
    prune_device_logins,
    record_failed_approval,
)
from backend.db.events import (
    NewEvent,
    StoredEvent,
    event_id_range,
    events_after,
    insert_event,
    insert_numbered_events,
    last_event_id,
    numbered,
    prune_events,
)
from backend.db.experiments import (
    RATE_WINDOW,
    ExperimentRecord,
    delete_experiment,
    experiment_name,
    experiment_rows_json,
    experiment_visible,
    experiment_visible_sync,
    experiments_by_ids,
    experiments_only_shown_by,
    find_experiment,
    insert_experiment,
    reencode_old_rows,
    stale_experiments,
    update_experiment,
    update_experiment_progress,
    update_experiments_progress,
)
from backend.db.projects import (
    ProjectScope,
    add_member,
    delete_project,
    drop_invitation,
    insert_project,
    invitation_sync,
    invitations_of,
    invite,
    members_of,
    members_of_sync,
    next_id,
    owners_showing,
    project_ids_showing,
    project_member_ids_sync,
    project_owner_id,
    project_row_sync,
    project_scope,
    project_scope_any,
    project_scopes_of,
    projects_of,
    remove_member,
)
from backend.db.series import (
    BLOCK_BITS,
    arrival_times,
    delete_some_points,
    file_points,
    find_series,
    image_png,
    images_of,
    log_points,
    logged_points,
    series_id,
    series_max_step,
    series_names,
    series_page,
    summarise_block,
    summarise_changes,
    summarise_series,
    upsert_image,
    upsert_points_many,
    wire_points,
)
from backend.db.ssh_keys import (
    claim_ssh_key,
    delete_all_ssh_keys,
    delete_ssh_key,
    delete_ssh_key_by_id,
    drop_other_claims,
    end_ssh_sessions,
    insert_ssh_key,
    mark_ssh_session,
    ssh_key_claims,
    ssh_keys_of,
    ssh_keys_sync,
    touch_ssh_key,
    user_of_ssh_key,
)
