"""The chat settings' "GPU layers" row: only where llama.cpp can offload to a GPU."""

from __future__ import annotations

from typing import Any

from slmdesk.llama.devices import offload_support


def test_gpu_layers_show_only_when_offload_is_supported(qtbot: Any) -> None:
    from slmdesk.ui.chat.view import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.gpu_layers.isVisible()  # hidden until the build is known to offload
    assert panel.gpu_layers_value() is None
    panel.show_gpu_layers(True)
    assert panel.gpu_layers.isVisible()
    assert panel.gpu_layers_value() is None  # "automatic"
    panel.gpu_layers.setValue(0)
    assert panel.gpu_layers_value() == 0  # CPU only
    panel.gpu_layers.setValue(12)
    assert panel.gpu_layers_value() == 12
    panel.show_gpu_layers(False)
    assert panel.gpu_layers_value() is None


def test_this_machine_shows_no_gpu_layers(qtbot: Any) -> None:
    """The real question, asked of this machine's CPU-only llama.cpp."""
    from slmdesk.ui.chat.view import SettingsPanel

    supported = offload_support().supported  # asked before any window shows, as a worker would
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.show_gpu_layers(supported)
    assert not panel.gpu_layers.isVisible()
