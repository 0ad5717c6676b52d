"""`cryptsetup luksDump` and /etc/crypttab turned into layout entries (pure).

The header UUID is what crypttab and the initramfs look for, and cipher and
key size are what `luksFormat` must be given to make an equivalent
container; the keys themselves are never in a dump.  The header itself
(`luksHeaderBackup`) travels only when the configuration asks for it.
"""

from __future__ import annotations

import re


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _val(v: str | None) -> str | None:
    v = (v or "").strip()
    return None if not v or v.startswith("(no ") else v


def parse_luks_dump(text: str) -> dict:
    """LUKS1 (flat 'Key: value' lines) and LUKS2 (sections) dumps."""
    top, section, item = {}, None, None
    segments, keyslots, digests = [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("Data segments", "Keyslots", "Tokens", "Digests"):
                section, item = k, None
                continue
            m = re.match(r"^Key Slot (\d+): (ENABLED|DISABLED)", line)
            if m:  # LUKS1
                if m.group(2) == "ENABLED":
                    keyslots.append({"slot": int(m.group(1))})
                section = None
                continue
            section = None
            top[k] = v.strip()
            continue
        m = re.match(r"^\s{2}(\d+): (\S+)", line)
        if m and section:
            item = {"_n": int(m.group(1)), "_type": m.group(2)}
            {"Data segments": segments, "Keyslots": keyslots,
             "Digests": digests}.get(section, []).append(item)
            continue
        if item is not None and section:
            k, sep, v = line.strip().partition(":")
            if sep:
                item.setdefault(k.strip(), v.strip())
    version = _int(top.get("Version"))
    out = {"version": version, "uuid": _val(top.get("UUID")), "label": None, "subsystem": None}
    if version == 1:
        cipher = top.get("Cipher name", "")
        mode = top.get("Cipher mode", "")
        out.update({
            "cipher": f"{cipher}-{mode}" if mode else cipher or None,
            "key_size": _int(top.get("MK bits")),
            "hash": _val(top.get("Hash spec")),
            "data_offset": (_int(top.get("Payload offset")) or 0) * 512,
            "sector_size": 512,
            "pbkdf": "pbkdf2",
            "keyslots": [k["slot"] for k in keyslots],
        })
        return out
    seg = next((s for s in segments if s["_type"] == "crypt"), segments[0] if segments else {})
    slot0 = keyslots[0] if keyslots else {}
    digest = digests[0] if digests else {}
    out.update({
        "label": _val(top.get("Label")),
        "subsystem": _val(top.get("Subsystem")),
        "cipher": seg.get("cipher"),
        "key_size": _int((slot0.get("Key") or "").split(" ")[0]),
        "hash": digest.get("Hash"),
        "data_offset": _int((seg.get("offset") or "").split(" ")[0]),
        "sector_size": _int((seg.get("sector") or "").split(" ")[0]),
        "pbkdf": slot0.get("PBKDF"),
        "keyslots": [k["_n"] for k in keyslots],
    })
    return out


def parse_crypttab(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        out.append({"name": f[0], "device": f[1] if len(f) > 1 else None,
                    "keyfile": f[2] if len(f) > 2 and f[2] not in ("none", "-") else None,
                    "options": f[3] if len(f) > 3 else None})
    return out
