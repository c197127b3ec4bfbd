"""The Help menu's pages: the keyboard shortcuts (read from the window's own menus, so the list cannot drift) and
a short account of how an FCN works, in the viewer's terms."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMenu, QMenuBar, QTextBrowser, QVBoxLayout, QWidget

# Keys that no menu action carries.
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("← / →", "Step-Through: previous / next step (as soon as the tab is shown)"),
    ("Wheel", "zoom all panels about the cursor"),
    ("Drag", "pan all panels together"),
    ("Hover", "status bar: every stage's class and confidence under the cursor, and the 8s top-3"),
)

HOW_FCN_WORKS = """
<h2>How an FCN segments an image</h2>
<p><b>The idea.</b> A classification net (VGG16) looks at a whole image and gives one score per class.
Long, Shelhamer and Darrell (CVPR 2015) made it <i>fully convolutional</i>: its fully connected layers fc6 and fc7
become convolutions, so the net slides over an image of any size and gives a whole <i>map</i> of class scores
— one cell for every 32 × 32 pixels. A 1×1 convolution, <code>score_fr</code>, turns the conv7 features into
those scores. That is the <b>conv7 scores</b> panel (stride 32).</p>
<p><b>Upsampling.</b> To get one class per pixel, the coarse map is upsampled by a <i>deconvolution</i>
(transposed convolution) that starts out as bilinear interpolation. FCN-32s does it in one ×32 step: masks
with blobby edges, because every 32 × 32 block was decided from one cell.</p>
<p><b>Skips.</b> Earlier layers see finer detail. FCN-16s scores pool4 (stride 16) with its own 1×1
convolution, upsamples the conv7 scores ×2, and <i>adds</i> the two maps cell by cell: the <b>pool4-fused</b>
panel. FCN-8s does the same once more with pool3 (stride 8): <b>pool3-fused</b>. The skip scores are trained
as corrections to the upsampled coarse scores (in the staged recipe they start at zero), so on their own they
look like noise; the sum is what means something. Each fused map is upsampled to the image (×16, ×8).</p>
<p><b>Strides.</b> 32, 16 and 8 are how many image pixels one cell of each map stands for. The panel titles give
each tensor's shape: classes × rows × columns.</p>
<p><b>Crop offsets.</b> The paper's nets pad conv1_1 by 100 pixels so that any image size works, which makes
every map a little larger than the image's share of it. Before each sum and at the end, the larger map is
cropped so that its cells line up: the reference nets crop at offset 19 (FCN-32s), 5 and 27 (FCN-16s), 5, 9 and
31 (FCN-8s). The bundled compact nets use "same" padding, so every crop sits at offset 0 and only trims the
odd row or column. The info panel lists this image's crops; Step-Through draws each one.</p>
<p><b>Where to look.</b> <i>Stages</i> (Ctrl+1) shows every map at its own resolution. <i>Step-Through</i> (Ctrl+2)
walks the fusion path one operation at a time. <i>Compare</i> (Ctrl+3) maps where the 8s mask differs from the
coarser ones — mostly along object boundaries. <i>Ground Truth</i> (Ctrl+4) scores each mask against a label.
<i>Contributions</i> (Ctrl+5) splits the final scores exactly into the conv7, pool4 and pool3 terms and switches
each skip off. <i>Receptive Fields</i> (Ctrl+6): click a pixel to see the cells that feed it and what each one
sees of the photo. <i>Sequence</i> (Ctrl+7) plays a folder of frames, an animation or a video with every stage live. <i>Lessons</i>
(Ctrl+8) runs the paper's three "why" lessons on the loaded net.</p>
"""


def menu_shortcuts(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(keys, menu path, action) for every action in the menus that has a keyboard shortcut."""
    rows: list[tuple[str, str, str]] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{path} ▸ {_plain(action.text())}")  # type: ignore[arg-type]
            elif not action.shortcut().isEmpty():
                keys = " or ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
                rows.append((keys, path, _plain(action.text())))

    for top in menu_bar.actions():
        if isinstance(top.menu(), QMenu):
            walk(top.menu(), _plain(top.text()))  # type: ignore[arg-type]
    return rows


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def shortcuts_html(menu_bar: QMenuBar) -> str:
    rows = "".join(
        f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(path)} ▸ {html.escape(name)}</td></tr>"
        for keys, path, name in menu_shortcuts(menu_bar)
    )
    rows += "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(what)}</td></tr>" for k, what in OTHER_KEYS)
    return f"<h2>Keyboard shortcuts</h2><table cellspacing='4'>{rows}</table>"


def show_page(parent: QWidget, title: str, page: str) -> QDialog:
    """A non-modal window with one page of text; it closes with Esc or Close."""
    dialog = QDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # deleted when closed, not kept until the window goes
    dialog.setWindowTitle(title)
    text = QTextBrowser()
    text.setOpenExternalLinks(True)
    text.setHtml(page)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.resize(640, 560)
    dialog.show()
    return dialog


def add_help_actions(menu: QMenu, window: QWidget, menu_bar: QMenuBar) -> list[QAction]:
    """Help ▸ Keyboard Shortcuts (F1) and Help ▸ How FCN Works."""
    shortcuts = menu.addAction("&Keyboard Shortcuts")
    shortcuts.setShortcut(QKeySequence("F1"))
    shortcuts.triggered.connect(lambda: show_page(window, "Keyboard shortcuts", shortcuts_html(menu_bar)))
    how = menu.addAction("&How FCN Works")
    how.triggered.connect(lambda: show_page(window, "How FCN works", HOW_FCN_WORKS))
    return [shortcuts, how]
