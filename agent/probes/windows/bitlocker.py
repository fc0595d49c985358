"""Encryption on Windows: BitLocker per volume, and plaintext network services.

``Win32_EncryptableVolume`` (namespace
``root/cimv2/Security/MicrosoftVolumeEncryption``, administrators only):
``ProtectionStatus`` (0 off, 1 on, 2 unknown), ``VolumeType`` (0 operating
system, 1 fixed data, 2 removable), and the ``GetConversionStatus`` (0 fully
decrypted, 1 fully encrypted, 2–5 in progress or paused) and
``GetEncryptionMethod`` methods.  A volume counts as encrypted when its
protection is on: a suspended volume keeps its key in clear on the disk.
The namespace is absent when BitLocker is not installed (some Server
editions): then no volume is BitLocker-encrypted.

Plaintext services come from the socket table, as on Linux (psutil).
"""

from __future__ import annotations

from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.encryption import listening_tcp, plaintext_services
from agent.probes.windows.powershell import Script, ScriptError, as_int, as_list, as_str, run_script
from agent.report import EncryptedVolume, EncryptionSection

VOLUMES = Script(
    "bitlocker_volumes",
    """$system = (Get-CimInstance -ClassName Win32_OperatingSystem).SystemDrive
$ns = 'root/cimv2/Security/MicrosoftVolumeEncryption'
$vols = @(Get-CimInstance -Namespace $ns -ClassName Win32_EncryptableVolume)
$rows = foreach ($v in $vols) {
  $conv = Invoke-CimMethod -InputObject $v -MethodName GetConversionStatus
  $meth = Invoke-CimMethod -InputObject $v -MethodName GetEncryptionMethod
  [pscustomobject]@{
    DriveLetter = $v.DriveLetter; DeviceID = $v.DeviceID; VolumeType = $v.VolumeType
    ProtectionStatus = $v.ProtectionStatus; ConversionStatus = $conv.ConversionStatus
    EncryptionPercentage = $conv.EncryptionPercentage; EncryptionMethod = $meth.EncryptionMethod
    SystemDrive = $system
  }
}
ConvertTo-Json -Compress -Depth 3 -InputObject @($rows)""",
)

ENCRYPTION_METHODS = {
    0: "None",
    1: "Aes128Diffuser",
    2: "Aes256Diffuser",
    3: "Aes128",
    4: "Aes256",
    5: "Hardware",
    6: "XtsAes128",
    7: "XtsAes256",
}
CONVERSION = {
    0: "fully decrypted",
    1: "fully encrypted",
    2: "encryption in progress",
    3: "decryption in progress",
    4: "encryption paused",
    5: "decryption paused",
}


def parse_volumes(data: Any) -> tuple[list[EncryptedVolume], bool | None, list[str]]:
    """(protected volumes, system volume protected, notes) from the ``bitlocker_volumes`` rows."""
    volumes: list[EncryptedVolume] = []
    notes: list[str] = []
    root: bool | None = None
    for row in as_list(data):
        letter = as_str(row.get("DriveLetter"))
        device = as_str(row.get("DeviceID"))
        protection = as_int(row.get("ProtectionStatus"))
        conversion = as_int(row.get("ConversionStatus"))
        is_system = as_int(row.get("VolumeType")) == 0 or (
            letter is not None and letter == as_str(row.get("SystemDrive"))
        )
        label = letter or device or "?"
        state = CONVERSION.get(conversion or 0, f"conversion status {conversion}")
        if protection == 1:
            method = ENCRYPTION_METHODS.get(as_int(row.get("EncryptionMethod")) or 0, "unknown")
            volumes.append(
                EncryptedVolume(
                    name=label,
                    device=device,
                    kind="other",
                    mountpoint=f"{letter}\\" if letter else None,
                    method=f"BitLocker {method}",
                )
            )
        elif conversion not in (0, None):
            notes.append(f"{label}: BitLocker {state} but protection is off (suspended)")
        if is_system:
            root = protection == 1 if protection in (0, 1) else root
    return volumes, root, notes


def probe(ctx: ProbeContext) -> EncryptionSection:
    notes: list[str] = []
    volumes: list[EncryptedVolume] = []
    root: bool | None = None
    try:
        volumes, root, found_notes = parse_volumes(run_script(ctx, VOLUMES))
        notes += found_notes
        if root is None:
            notes.append("the system volume is not in the BitLocker volume list")
    except ScriptError as exc:
        if exc.kind == "missing" and "PowerShell" not in exc.message:
            root = False
            notes.append("BitLocker is not installed (no MicrosoftVolumeEncryption namespace)")
        elif exc.kind == "denied" or exc.kind == "missing":
            return unknown(EncryptionSection, f"BitLocker status unreadable: {exc}")
        else:
            return unknown(EncryptionSection, f"BitLocker status unreadable: {exc}")
    sockets = listening_tcp(ctx, notes) if ctx.live else None
    return EncryptionSection(
        volumes=volumes,
        root_encrypted=root,
        plaintext_services=plaintext_services(sockets) if sockets is not None else [],
        notes=notes,
    )
