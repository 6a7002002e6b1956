"""The lead's timeline, read from the leads service's HTTP API with the caller's own token
(so the caller sees what they may see there, no more). A read path only: a leads service
that is down or slow leaves the deal's timeline without its lead's part, said so."""
import datetime as dt


def lead_timeline(base_url, lead_id, authorization, timeout):
    """(entries, None) or ([], why not)."""
    # imported here: requests (with urllib3, idna, charset detection) is a fifth of the
    # deals service's imports, and only this read path uses it
    import requests

    try:
        resp = requests.get(f"{base_url.rstrip('/')}/api/v1/leads/{lead_id}/timeline",
                            headers={"Authorization": authorization or ""}, timeout=timeout)
    except requests.RequestException as exc:
        return [], f"leads unreachable: {type(exc).__name__}"
    if resp.status_code != 200:
        return [], f"leads answered {resp.status_code}"
    entries = resp.json().get("activities") or []
    for entry in entries:  # comparable with the deal's own times
        for key in ("at", "recorded_at"):
            if entry.get(key):
                entry[key] = dt.datetime.fromisoformat(entry[key])
    return entries, None
