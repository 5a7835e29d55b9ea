"""Print the character widths statusthing.py's badges are laid out with: DejaVu Sans at 11 px (the first font the
badges ask for), in pixels to a tenth, for the printable ASCII characters 32 to 126.

    pip install pillow && python tools/badge_widths.py     (needs Debian's fonts-dejavu-core)
"""
from PIL import ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

font = ImageFont.truetype(FONT, 110)  # measured at ten times the size, for the tenths
print(" ".join(f"{font.getlength(chr(code)) / 10:.1f}" for code in range(32, 127)))
