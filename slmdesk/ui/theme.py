"""Light and dark palettes (following the system unless the user picks one), icons, style sheet."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from slmdesk.common.resources import resource_path

ACCENT = "#4f6bff"
# Selected rows: darker than the accent so white text on it reads (5:1) and the row stands out
# from the list background in both themes (3:1 or more).
SELECTION = "#3d5afe"
VERDICT_COLORS = {"fits": "#2e9d5b", "tight": "#d08a00", "too big": "#d04242"}
# Notices (background, text) per kind and theme: success must never look like a warning.
NOTICE_COLORS = {
    "light": {"warning": ("#fbefd6", "#5c3d00"), "success": ("#dcf2e4", "#12502c")},
    "dark": {"warning": ("#4a3812", "#f6dfae"), "success": ("#17402a", "#bdebcf")},
}


def system_prefers_dark() -> bool:
    """Whether the desktop asks for a dark appearance."""
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        base, window, text, alt, button = "#1e1f24", "#26272d", "#e6e7ea", "#2b2c33", "#30313a"
        mid, disabled = "#3a3b44", "#7d7f88"
    else:
        base, window, text, alt, button = "#ffffff", "#f4f5f7", "#1d1f24", "#f7f8fa", "#fbfbfc"
        mid, disabled = "#d5d8de", "#9a9ea8"
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: alt,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.ToolTipBase: base,
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: disabled,
        QPalette.ColorRole.Highlight: SELECTION,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.Mid: mid,
        QPalette.ColorRole.Midlight: mid,
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return p


def _style_sheet(dark: bool) -> str:
    side = "#1a1b20" if dark else "#eceef2"
    side_sel = "#33354a" if dark else "#dde2ff"
    border = "#3a3b44" if dark else "#d5d8de"
    muted = "#9a9ea8" if dark else "#6b7080"
    notices = "".join(
        f'QLabel#chatNotice[kind="{kind}"] {{ background: {bg}; color: {fg}; padding: 6px; '
        "border-radius: 6px; }\n"
        for kind, (bg, fg) in NOTICE_COLORS["dark" if dark else "light"].items()
    )
    # Outlines of radio buttons and check boxes: 3:1 or more against the window in each theme.
    indicator = "#8a8d99" if dark else "#767b89"
    base = "#1e1f24" if dark else "#ffffff"  # the palette's Base (gradients take no palette())
    check_mark = resource_path("icons", "check-mark.svg").as_posix()
    return (
        notices
        + f"""
    QListWidget#navigation {{ background: {side}; border: none; padding-top: 8px; font-size: 14px;
        outline: 0; }}
    QListWidget#navigation::item {{ padding: 10px 12px; border-radius: 8px; margin: 2px 8px; }}
    QListWidget#navigation::item:selected {{ background: {side_sel}; color: palette(text); }}
    QLabel[role="title"] {{ font-size: 20px; font-weight: 600; }}
    QLabel[role="muted"] {{ color: {muted}; }}
    QLabel[role="step"] {{ font-weight: 700; }}
    QLabel[role="badge"] {{ border-radius: 8px; padding: 2px 8px; color: white; font-weight: 600; }}
    QFrame[role="card"] {{ border: 1px solid {border}; border-radius: 10px; }}
    QListWidget#conversations::item {{ padding: 6px 4px; border-radius: 6px; }}
    QListWidget#conversations::item:selected {{ background: palette(highlight);
        color: palette(highlighted-text); }}
    QRadioButton::indicator, QCheckBox::indicator {{ width: 14px; height: 14px;
        border: 1px solid {indicator}; background: palette(base); }}
    QRadioButton::indicator {{ border-radius: 8px; }}
    QCheckBox::indicator {{ border-radius: 3px; }}
    QRadioButton::indicator:checked {{ border-color: {ACCENT}; background: qradialgradient(
        cx: 0.5, cy: 0.5, radius: 0.5, fx: 0.5, fy: 0.5, stop: 0 {ACCENT}, stop: 0.45 {ACCENT},
        stop: 0.6 {base}, stop: 1 {base}); }}
    QCheckBox::indicator:checked {{ border-color: {ACCENT}; background: {ACCENT};
        image: url("{check_mark}"); }}
    QRadioButton::indicator:disabled, QCheckBox::indicator:disabled {{ border-color: {border};
        background: palette(window); }}
    QFrame#message[speaker="user"] {{ background: {side}; border-radius: 10px; }}
    QPushButton[role="primary"] {{ background: {ACCENT}; color: white; border: none;
        border-radius: 6px; padding: 6px 14px; font-weight: 600; }}
    QPushButton[role="primary"]:disabled {{ background: {border}; color: {muted}; }}
    """
    )


def apply_theme(app: QApplication, choice: str = "system") -> bool:
    """Apply ``system``, ``light`` or ``dark``; returns whether the dark palette is in use."""
    dark = system_prefers_dark() if choice == "system" else choice == "dark"
    app.setStyle("Fusion")
    app.setPalette(_palette(dark))
    app.setStyleSheet(_style_sheet(dark))
    return dark


@cache
def icon(name: str) -> QIcon:
    """An icon from ``resources/icons`` by name (without ``.svg``)."""
    path = resource_path("icons", f"{name}.svg")
    return QIcon(str(path)) if path.exists() else QIcon()


def verdict_style(verdict: str) -> str:
    """Style sheet for a coloured fit-verdict badge."""
    color = VERDICT_COLORS.get(verdict, "#6b7080")
    return f"background: {color}; color: white; border-radius: 8px; padding: 2px 8px; font-weight: 600;"
