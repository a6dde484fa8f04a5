; Inno Setup 6.3+ script: per-user installer for the PyInstaller bundle (no administrator rights).
;
; Build (after `python packaging/build.py` on Windows has produced dist\slmdesk):
;   iscc /DAppVersion=0.1.0 packaging\windows\slmdesk.iss
; The workflow .github/workflows/package.yml passes the version read from pyproject.toml.
; Output: dist\slmdesk-<version>-setup.exe

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#define AppName "slmdesk"
#define SourceDir "..\..\dist\slmdesk"

[Setup]
; A fixed AppId lets a newer installer upgrade an older install in place.
AppId={{6F0D3C1E-8C55-4B43-9E56-2D7A4C1B9A10}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=slmdesk
; Per-user install: no UAC prompt; the app lands in %LOCALAPPDATA%\Programs\slmdesk.
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
OutputDir=..\..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
SetupIconFile=..\..\build\icons\slmdesk.ico
UninstallDisplayIcon={app}\slmdesk.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; The bundle is one folder: stop a running copy before replacing its files.
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\slmdesk.exe"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\slmdesk.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\slmdesk.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; User data (models, conversations, settings) lives in %LOCALAPPDATA%\slmdesk and is kept on
; uninstall on purpose: models are large and the user may reinstall.
