"""The lessons without their widgets (no Qt): what the teaching tabs, the slide figures and the sequence player show."""
