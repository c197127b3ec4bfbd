"""A non-modal message strip above the panels: says what is wrong or missing without blocking the window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

# info: what is missing (e.g. no model yet); warning: a choice the app made for the user (defaults,
# another device) that stays until dismissed; error: what just failed.
BannerKind = Literal["info", "warning", "error"]
STYLES = {
    "info": "background: #e8f1fb; color: #0b3a66; border: 1px solid #9cc3ea;",
    "warning": "background: #fff6dd; color: #5c4300; border: 1px solid #e6c96b;",
    "error": "background: #fdecea; color: #7a1010; border: 1px solid #eba3a3;",
}


class MessageBanner(QFrame):
    """One message at a time, with an optional action button and a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.kind: BannerKind | None = None
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._action = QPushButton()
        self._action.hide()
        self._action_callback: Callable[[], None] | None = None
        self._action.clicked.connect(self._run_action)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._label, 1)
        layout.addWidget(self._action)
        layout.addWidget(close)
        self.hide()

    def text(self) -> str:
        return self._label.text()

    def show_message(
        self, text: str, kind: BannerKind = "info", action: tuple[str, Callable[[], None]] | None = None
    ) -> None:
        self.kind = kind
        self._label.setText(text)
        self.setStyleSheet(f"#banner {{ {STYLES[kind]} border-radius: 4px; }} QLabel {{ border: none; }}")
        self._action_callback = action[1] if action else None
        self._action.setText(action[0] if action else "")
        self._action.setVisible(action is not None)
        self.show()

    def dismiss(self) -> None:
        self.kind = None
        self._label.clear()
        self.hide()

    def _run_action(self) -> None:
        if self._action_callback is not None:
            self._action_callback()
