<#
.SYNOPSIS
  Install (or upgrade) the posture agent as a Windows service, silently.

.DESCRIPTION
  1. Installs a private Python (all users, no PATH change) into -InstallDir\python
     from -PythonInstaller, unless it is already there.
  2. Installs posture-scanner[windows] (with pywin32) from the offline -Wheelhouse.
  3. Creates %ProgramData%\posture-agent (SYSTEM and Administrators only) and writes
     agent.toml there if it does not exist yet.
  4. Enrolls with the collector once (state\enrollment.json).
  5. Registers the "PostureAgent" service (LocalSystem, automatic start), sets its
     recovery actions (restart after 1, 1 and 5 minutes; also on a non-zero exit)
     and starts it.
  Re-running the script upgrades the package and restarts the service.

  Exit code 0 on success, 1 on failure; a transcript is kept in
  %ProgramData%\posture-agent\install.log.

.EXAMPLE
  powershell.exe -NoProfile -ExecutionPolicy Bypass -File install.ps1 `
    -PythonInstaller \\fileserver\posture\python-3.12.7-amd64.exe `
    -Wheelhouse \\fileserver\posture\wheels `
    -CollectorUrl https://posture.sotttt.example.vn -EnrollmentToken pe_XXXX -Role workstation
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$Wheelhouse,
    [Parameter(Mandatory = $true)][string]$CollectorUrl,
    [string]$EnrollmentToken = '',
    [ValidateSet('server', 'workstation', 'unknown')][string]$Role = 'unknown',
    [string]$PythonInstaller = '',
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'PostureAgent'),
    [int]$ProbeTimeout = 180,
    [string]$CaFile = ''
)

$ErrorActionPreference = 'Stop'
$ServiceName = 'PostureAgent'
$DataDir = Join-Path $env:ProgramData 'posture-agent'
$StateDir = Join-Path $DataDir 'state'
$Config = Join-Path $DataDir 'agent.toml'
$Python = Join-Path $InstallDir 'python\python.exe'

function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') exited with $LASTEXITCODE" }
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error 'install.ps1 must run as an administrator (or as SYSTEM from a deployment tool)'
    exit 1
}

New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
# Only SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544): the state holds the credential.
Invoke-Checked icacls.exe @($DataDir, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')
Start-Transcript -Path (Join-Path $DataDir 'install.log') -Append | Out-Null
try {
    if (-not (Test-Path $Python)) {
        if (-not $PythonInstaller) { throw "no Python in $InstallDir\python and no -PythonInstaller given" }
        $target = Join-Path $InstallDir 'python'
        $p = Start-Process -FilePath $PythonInstaller -Wait -PassThru -ArgumentList @(
            '/quiet', 'InstallAllUsers=1', "TargetDir=`"$target`"", 'PrependPath=0',
            'Include_launcher=0', 'Include_test=0', 'Shortcuts=0', 'AssociateFiles=0')
        if ($p.ExitCode -ne 0) { throw "Python installer exited with $($p.ExitCode)" }
    }

    $existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($existing -and $existing.Status -ne 'Stopped') { Stop-Service -Name $ServiceName -Force }

    Invoke-Checked $Python @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-index',
        '--find-links', $Wheelhouse, '--upgrade', 'posture-scanner[windows]')
    # pywin32 registers its DLLs and pythonservice.exe (needed by the service host).
    Invoke-Checked $Python @('-m', 'pywin32_postinstall', '-install', '-silent')

    if (-not (Test-Path $Config)) {
        $lines = @(
            '# posture-agent configuration (deploy/windows/agent.toml.example lists every key)',
            "collector_url = `"$CollectorUrl`"",
            "state_dir = `"$($StateDir -replace '\\', '/')`"",
            "role = `"$Role`"",
            "probe_timeout = $ProbeTimeout.0"
        )
        if ($CaFile) { $lines += "ca_file = `"$($CaFile -replace '\\', '/')`"" }
        Set-Content -Path $Config -Value $lines -Encoding ASCII
    }

    if (-not (Test-Path (Join-Path $StateDir 'enrollment.json'))) {
        if (-not $EnrollmentToken) { throw 'not enrolled yet: give -EnrollmentToken' }
        Invoke-Checked $Python @('-m', 'agent.cli', '--config', $Config, 'enroll',
            '--collector', $CollectorUrl, '--token', $EnrollmentToken)
    }

    if (-not $existing) {
        Invoke-Checked $Python @('-m', 'agent.winservice', '--startup', 'auto', 'install')
    } else {
        Invoke-Checked $Python @('-m', 'agent.winservice', '--startup', 'auto', 'update')
    }
    # Recovery: restart after 1 min, 1 min, 5 min; reset the count after a day;
    # failureflag 1 also applies it when the service stops with an error code.
    Invoke-Checked sc.exe @('failure', $ServiceName, 'reset=', '86400',
        'actions=', 'restart/60000/restart/60000/restart/300000')
    Invoke-Checked sc.exe @('failureflag', $ServiceName, '1')
    Start-Service -Name $ServiceName
    Write-Output "posture agent installed and started (config $Config)"
    $code = 0
} catch {
    Write-Error $_
    $code = 1
} finally {
    Stop-Transcript | Out-Null
}
exit $code
