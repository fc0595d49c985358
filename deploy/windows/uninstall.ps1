<#
.SYNOPSIS
  Remove the posture agent service; optionally its data and its private Python.

.EXAMPLE
  powershell.exe -NoProfile -ExecutionPolicy Bypass -File uninstall.ps1 -RemoveData `
    -PythonInstaller \\fileserver\posture\python-3.12.7-amd64.exe
#>
[CmdletBinding()]
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'PostureAgent'),
    [switch]$RemoveData,
    [string]$PythonInstaller = ''
)

$ErrorActionPreference = 'Stop'
$ServiceName = 'PostureAgent'
$Python = Join-Path $InstallDir 'python\python.exe'
$DataDir = Join-Path $env:ProgramData 'posture-agent'

$service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($service) {
    if ($service.Status -ne 'Stopped') { Stop-Service -Name $ServiceName -Force }
    if (Test-Path $Python) { & $Python -m agent.winservice remove } else { & sc.exe delete $ServiceName }
    if ($LASTEXITCODE -ne 0) { Write-Error "could not remove the service ($LASTEXITCODE)"; exit 1 }
}
if ($PythonInstaller -and (Test-Path $Python)) {
    $p = Start-Process -FilePath $PythonInstaller -Wait -PassThru -ArgumentList @('/quiet', '/uninstall')
    if ($p.ExitCode -ne 0) { Write-Error "Python uninstaller exited with $($p.ExitCode)"; exit 1 }
}
if (Test-Path $InstallDir) { Remove-Item -Recurse -Force -Path $InstallDir }
if ($RemoveData -and (Test-Path $DataDir)) { Remove-Item -Recurse -Force -Path $DataDir }
Write-Output 'posture agent removed'
exit 0
