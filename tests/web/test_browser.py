"""The dashboard end to end in headless Chromium (Debian's ``chromium`` driven by
Playwright) against a real ``posture-collector serve`` process seeded over HTTP
with real reports.  Screenshots go to ``$POSTURE_TEST_ARTIFACTS`` (default: tmp_path)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import insecure_sections, make_report
from tests.e2e.conftest import Collector

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "mật khẩu thật dài 2026"


def _playwright() -> Any:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
            "the dashboard's browser tests need it (.ci/run installs it)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]' (never `playwright install`)")
    return sync_playwright


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("POSTURE_TEST_ARTIFACTS")
    root = Path(base) if base else tmp_path / "artifacts"
    out = root / request.node.name
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Collector]:
    """A collector process with two agencies, machines with failing and passing
    checks (real reports over HTTP) and a province administrator."""
    collector = Collector(tmp_path)
    collector.start()
    try:
        admin = collector.admin()
        fleet = {
            ("SO-TC", "Sở Tài chính", 3): [
                ("pc-ketoan-01", "workstation", {}),
                ("srv-web-01", "server", insecure_sections()),
            ],
            ("UB-BB", "Ủy ban nhân dân huyện Bàu Bàng", 2): [
                ("pc-vanthu-01", "workstation", insecure_sections()),
                ("pc-vanthu-02", "workstation", {}),
            ],
        }
        for (code, name, level), hosts in fleet.items():
            agency = admin.post("/agencies", json={"code": code, "name": name, "level": level})
            agency.raise_for_status()
            token = admin.post(
                f"/agencies/{agency.json()['id']}/enrollment-tokens", json={}
            ).json()["token"]
            for hostname, role, sections in hosts:
                enrolled = admin.post(
                    "/enroll",
                    json={
                        "token": token,
                        "hostname": hostname,
                        "machine_id": hostname,
                        "role": role,
                    },
                    headers={"Authorization": ""},
                )
                enrolled.raise_for_status()
                report = make_report(hostname=hostname, machine_id=hostname, role=role, **sections)
                delivered = admin.post(
                    "/reports",
                    content=report.model_dump_json(),
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {enrolled.json()['credential']}",
                    },
                )
                assert delivered.status_code in (200, 201, 202), delivered.text
        admin.post(
            "/users", json={"username": "sophia", "role": "province_admin", "password": PASSWORD}
        ).raise_for_status()
        yield collector
    finally:
        collector.stop()


def test_login_matrix_drill_down_language_and_export(
    seeded: Collector, artifacts: Path, tmp_path: Path
) -> None:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(accept_downloads=True, locale="vi-VN")
            page = context.new_page()
            page.goto(f"{seeded.url}/ui/")
            assert "/ui/login" in page.url
            page.get_by_label("Tên đăng nhập").fill("sophia")
            page.get_by_label("Mật khẩu").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url("**/ui/province")
            page.screenshot(path=str(artifacts / "1-province.png"), full_page=True)
            matrix = page.locator("table.matrix").inner_text()
            for words in (
                "Sở Tài chính",
                "Ủy ban nhân dân huyện Bàu Bàng",
                "Điều 16",
                "Điều 19",
                "Mức độ",
                "Không đạt",
            ):
                assert words in matrix, words

            page.get_by_role("link", name="Sở Tài chính").click()
            page.wait_for_url("**/ui/agencies/*")
            page.screenshot(path=str(artifacts / "2-agency.png"), full_page=True)
            hosts = page.locator("table.hosts tbody tr")
            assert hosts.count() == 2
            assert "srv-web-01" in hosts.first.inner_text()  # worst first

            page.get_by_role("link", name="srv-web-01").click()
            page.wait_for_url("**/ui/hosts/*")
            page.screenshot(path=str(artifacts / "3-machine.png"), full_page=True)
            body = page.locator("main").inner_text()
            for words in (
                "Thông tin máy",
                "Kết quả kiểm tra",
                "Biện pháp khắc phục",
                "Không đạt",
                "Máy chủ",
            ):
                assert words in body, words

            page.locator("#lang-switch").click()  # "English"
            page.wait_for_load_state()
            assert page.locator("html").get_attribute("lang") == "en"
            body = page.locator("main").inner_text()
            assert "Remediation" in body and "Fail" in body
            page.screenshot(path=str(artifacts / "4-machine-en.png"), full_page=True)
            page.get_by_role("link", name="Sở Tài chính").click()
            page.wait_for_url("**/ui/agencies/*")
            assert "Machines and their gaps" in page.locator("main").inner_text()

            page.get_by_label("Period", exact=True).select_option("2026-H1")
            with page.expect_download() as info:
                page.get_by_role("button", name="Export CSV report").click()
            download = info.value
            saved = artifacts / download.suggested_filename
            download.save_as(str(saved))
            text = saved.read_bytes().decode("utf-8-sig")
            assert "srv-web-01" in text
            assert download.suggested_filename.endswith(".csv")

            page.locator("#lang-switch").click()  # "Tiếng Việt"
            page.wait_for_load_state()
            page.get_by_role("button", name="Đăng xuất").click()
            page.wait_for_url("**/ui/login*")
            assert "Bạn đã đăng xuất." in page.locator("main").inner_text()
            page.screenshot(path=str(artifacts / "5-logged-out.png"))
        finally:
            browser.close()
    assert (artifacts / "1-province.png").stat().st_size > 0
