"""A creative's rules: a banner's image is judged by its bytes (format and size read by
Pillow, never the file's name), at most 150 KiB and 4,096 px a side, never SVG; an
email says where the partner's link goes; each kind takes only its own fields."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from afflux_contracts import ImageFormat
from afflux_contracts.creatives import MAX_IMAGE_BYTES
from afflux_partners.domain.creative import Creative, decode_base64, read_image
from afflux_partners.domain.rules import RuleViolation

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="250"><script>alert(1)</script></svg>'


def image_file(kind: str = "PNG", width: int = 300, height: int = 250, size: int | None = None) -> bytes:
    """A plain image; ``size``: a PNG padded to exactly that many bytes (a text chunk)."""
    picture = Image.new("RGB", (width, height), "orange")
    out = io.BytesIO()
    picture.save(out, kind)
    if size is None:
        return out.getvalue()
    info = PngInfo()
    info.add_text("pad", "x" * (size - len(out.getvalue()) - 16))  # 12 of chunk framing, "pad", NUL
    padded = io.BytesIO()
    picture.save(padded, "PNG", pnginfo=info)
    assert len(padded.getvalue()) == size
    return padded.getvalue()


def refusal(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(RuleViolation) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.field, refused.value.code


@pytest.mark.parametrize(("kind", "expected"), [
    ("PNG", ImageFormat.PNG), ("JPEG", ImageFormat.JPEG), ("GIF", ImageFormat.GIF),
    ("WEBP", ImageFormat.WEBP)])
def test_each_raster_format_is_read_from_its_bytes_with_its_size(kind: str, expected: ImageFormat) -> None:
    image = read_image(image_file(kind, 728, 90), "banner.bin")
    assert (image.format, image.width, image.height, image.filename) == (expected, 728, 90, "banner.bin")


def test_a_png_named_jpg_is_a_png() -> None:
    image = read_image(image_file("PNG"), "spring.jpg")
    assert (image.format, image.filename) == (ImageFormat.PNG, "spring.jpg")


def test_an_svg_is_refused_whatever_it_is_called() -> None:
    assert refusal(read_image, SVG, "banner.png") == ("image_base64", "unsupported_format")


def test_an_image_of_exactly_150_kib_passes_and_one_byte_more_does_not() -> None:
    assert read_image(image_file(size=MAX_IMAGE_BYTES)).byte_size == MAX_IMAGE_BYTES
    assert refusal(read_image, image_file(size=MAX_IMAGE_BYTES + 1)) == ("image_base64", "image_too_large")
    assert refusal(read_image, image_file(size=151 * 1024)) == ("image_base64", "image_too_large")


def test_a_damaged_or_huge_image_and_bad_base64_are_refused() -> None:
    damaged = image_file()[:60]
    assert refusal(read_image, damaged)[0] == "image_base64"
    assert refusal(read_image, image_file("PNG", 4097, 1)) == ("image_base64", "image_too_large")
    assert refusal(decode_base64, "not base64!") == ("image_base64", "invalid_base64")
    assert decode_base64(base64.encodebytes(SVG).decode()) == SVG  # line breaks are no matter


def test_a_file_name_keeps_only_its_last_part() -> None:
    assert read_image(image_file(), "C:\\ads\\../spring.png").filename == "spring.png"


def test_an_email_says_where_the_link_goes_and_has_a_subject() -> None:
    def email(subject_lines: list[str], html_body: str) -> tuple[str, str]:
        return refusal(Creative.create, "o1", "email",
                       {"name": "Mail", "subject_lines": subject_lines, "html_body": html_body})

    no_link = '<p><a href="https://shop.example/">Shop</a></p>'
    assert email(["Hi"], no_link) == ("html_body", "missing_placeholder")
    assert email([], "{tracking_link}") == ("subject_lines", "too_few")
    assert email(["Hi", " "], "{tracking_link}")[0] == "subject_lines.1"


def test_each_kind_takes_its_own_fields_and_needs_them() -> None:
    assert refusal(Creative.create, "o1", "banner", {"name": "B"}) == ("image_base64", "missing_field")
    assert refusal(Creative.create, "o1", "text_link", {"name": "T", "link_text": "Go",
                                                        "alt_text": "x"}) == ("alt_text", "not_for_kind")
    assert refusal(Creative.create, "o1", "video", {"name": "V"}) == ("kind", "invalid_kind")
    link = Creative.create("o1", "text_link", {"name": "T", "link_text": "Shop now"})
    image = read_image(image_file())
    assert refusal(link.edit, {"image": image}) == ("image_base64", "not_for_kind")


def test_an_edit_changes_only_what_differs_and_archiving_is_a_status() -> None:
    banner = Creative.create("o1", "banner", {"name": "Leaderboard", "image": read_image(image_file())})
    assert banner.edit({"name": "Leaderboard"}) == ()
    assert banner.edit({"status": "archived", "alt_text": "Spring sale"}) == ("status", "alt_text")
    assert (banner.active, banner.alt_text, banner.offer_id, banner.kind) == (False, "Spring sale", "o1",
                                                                             "banner")
    assert refusal(banner.edit, {"status": "deleted"}) == ("status", "invalid_status")
