"""The PySide6 viewer: draws every FCN stage of an image and forwards what the user asks for."""
