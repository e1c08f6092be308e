"""Deterministic, realistic personal data for the demo: Chinese names, mainland mobiles,
full addresses from real province / city / district names, IPs and payer accounts.

Everything comes from ``random.Random`` seeded by the demo seed, one person at a time in a
fixed order, so ``People(seed).person(i)`` is the same person in every run and every process.
``ledger.demo.traffic.personal_strings(seed, orders)`` lists every string the demo may send
for that seed (each person's values and the written variants the demo uses), which is what
the privacy tests
look for in the database. None of it is real: the numbers are random, the names are drawn
from common surnames and given-name characters.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方")
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉鹏飞斌宇浩凯俊帆晨欣怡婷雪琳"
    "佳颖涵轩睿博诺思雨雅嘉志国海峰波宁珊慧晓子梓一若梦瑶琪蕾昊然泽翔瑞铭晗"
)

# (province, city, district, ISO 3166-2 code); municipalities write the city once.
MAINLAND_DISTRICTS: tuple[tuple[str, str, str, str], ...] = (
    ("北京市", "北京市", "朝阳区", "CN-BJ"),
    ("北京市", "北京市", "海淀区", "CN-BJ"),
    ("上海市", "上海市", "浦东新区", "CN-SH"),
    ("上海市", "上海市", "徐汇区", "CN-SH"),
    ("天津市", "天津市", "南开区", "CN-TJ"),
    ("重庆市", "重庆市", "渝中区", "CN-CQ"),
    ("广东省", "广州市", "天河区", "CN-GD"),
    ("广东省", "深圳市", "南山区", "CN-GD"),
    ("广东省", "深圳市", "福田区", "CN-GD"),
    ("浙江省", "杭州市", "西湖区", "CN-ZJ"),
    ("浙江省", "宁波市", "鄞州区", "CN-ZJ"),
    ("江苏省", "南京市", "鼓楼区", "CN-JS"),
    ("江苏省", "苏州市", "姑苏区", "CN-JS"),
    ("四川省", "成都市", "武侯区", "CN-SC"),
    ("湖北省", "武汉市", "洪山区", "CN-HB"),
    ("湖南省", "长沙市", "岳麓区", "CN-HN"),
    ("陕西省", "西安市", "雁塔区", "CN-SN"),
    ("山东省", "济南市", "历下区", "CN-SD"),
    ("山东省", "青岛市", "市南区", "CN-SD"),
    ("河南省", "郑州市", "金水区", "CN-HA"),
    ("福建省", "福州市", "鼓楼区", "CN-FJ"),
    ("福建省", "厦门市", "思明区", "CN-FJ"),
    ("安徽省", "合肥市", "蜀山区", "CN-AH"),
    ("辽宁省", "沈阳市", "和平区", "CN-LN"),
    ("辽宁省", "大连市", "中山区", "CN-LN"),
    ("吉林省", "长春市", "朝阳区", "CN-JL"),
    ("黑龙江省", "哈尔滨市", "南岗区", "CN-HL"),
    ("河北省", "石家庄市", "长安区", "CN-HE"),
    ("山西省", "太原市", "小店区", "CN-SX"),
    ("江西省", "南昌市", "东湖区", "CN-JX"),
    ("云南省", "昆明市", "五华区", "CN-YN"),
    ("贵州省", "贵阳市", "南明区", "CN-GZ"),
    ("广西壮族自治区", "南宁市", "青秀区", "CN-GX"),
    ("海南省", "海口市", "美兰区", "CN-HI"),
    ("甘肃省", "兰州市", "城关区", "CN-GS"),
    ("内蒙古自治区", "呼和浩特市", "新城区", "CN-NM"),
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "CN-XJ"),
    ("宁夏回族自治区", "银川市", "兴庆区", "CN-NX"),
    ("青海省", "西宁市", "城中区", "CN-QH"),
    ("西藏自治区", "拉萨市", "城关区", "CN-XZ"),
)
# Outside the mainland (3.3.3): used only for a submission the rules must refuse.
OUTSIDE_DISTRICTS: tuple[tuple[str, str, str, str], ...] = (
    ("香港特别行政区", "香港", "九龙城区", "CN-HK"),
    ("香港特别行政区", "香港", "湾仔区", "CN-HK"),
    ("澳门特别行政区", "澳门", "花地玛堂区", "CN-MO"),
)
STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "文化路",
    "长江路",
    "黄河路",
    "朝阳路",
    "胜利路",
    "光明路",
    "青年路",
    "学府路",
    "科技路",
    "创业大道",
    "幸福路",
    "迎宾大道",
    "滨江路",
    "东风路",
)
COMPOUNDS = (
    "阳光花园",
    "锦绣家园",
    "翠湖苑",
    "金色家园",
    "和谐家园",
    "书香苑",
    "御景湾",
    "幸福里",
    "中央公园",
    "滨江花城",
    "紫荆苑",
    "枫林小区",
)
MAIL_DOMAINS = ("163.com", "126.com", "qq.com", "sina.com", "foxmail.com", "outlook.com")
# First octets of blocks allocated to mainland Chinese networks.
CN_FIRST_OCTETS = (
    36,
    39,
    42,
    58,
    59,
    60,
    61,
    101,
    106,
    110,
    111,
    112,
    113,
    114,
    115,
    116,
    117,
    118,
    119,
    120,
    121,
    122,
    123,
    124,
    125,
    175,
    180,
    182,
    183,
    202,
    210,
    211,
    218,
    219,
    220,
    221,
    222,
    223,
)


@dataclass(frozen=True)
class Person:
    """One made-up data subject. Every field is personal data."""

    name: str
    phone: str  # 11-digit mainland mobile, as typed most often
    address: str
    region: str  # ISO 3166-2 code of the address's province
    ip: str
    alipay: str  # the Alipay account paid from
    wechat: str  # the WeChat Pay payer id
    bank_card: str  # a UnionPay card number
    away_address: str  # an address outside the mainland (3.3.3 refuses it)
    away_region: str

    def contact(self, *, phone: str | None = None, address: str | None = None) -> dict[str, str]:
        """The ``contact`` of a submit_order command, optionally with another written form."""
        return {
            "recipient_name": self.name,
            "phone": phone or self.phone,
            "address": address or self.address,
            "ip": self.ip,
        }

    def payer(self, method: str) -> str:
        return {"alipay": self.alipay, "wechat": self.wechat}.get(method, self.bank_card)

    def phone_variants(self) -> tuple[str, str]:
        """Other ways the same number is typed: +86 with spaces, and dashed."""
        p = self.phone
        return f"+86 {p[:3]} {p[3:7]} {p[7:]}", f"{p[:3]}-{p[3:7]}-{p[7:]}"

    def address_variant(self) -> str:
        """The same address typed with spaces and full-width punctuation."""
        return self.address.replace("号", "号 ", 1).replace("栋", "栋，", 1)

    def strings(self) -> list[str]:
        """Every string of this person the demo may send, in each written form it uses."""
        return [
            self.name,
            self.phone,
            *self.phone_variants(),
            self.address,
            self.address_variant(),
            self.ip,
            self.alipay,
            self.wechat,
            self.bank_card,
            self.away_address,
        ]


class People:
    """Person ``i`` for a seed: generated in order from one seeded stream, then cached."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"mall-ledger-demo-people:{seed}")
        self._people: list[Person] = []
        self._phones: set[str] = set()
        self._ips: set[str] = set()

    def person(self, index: int) -> Person:
        while len(self._people) <= index:
            self._people.append(self._next())
        return self._people[index]

    def generated(self) -> list[Person]:
        """Everyone generated so far (persons 0 .. n-1)."""
        return list(self._people)

    def _next(self) -> Person:
        rng = self._rng
        address, region = _address(rng, MAINLAND_DISTRICTS)
        away_address, away_region = _address(rng, OUTSIDE_DISTRICTS)
        return Person(
            name=_name(rng),
            phone=_unique(self._phones, lambda: _mobile(rng)),
            address=address,
            region=region,
            ip=_unique(self._ips, lambda: _ip(rng)),
            alipay=_mail(rng),
            wechat="o" + "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=27)),
            bank_card="62" + "".join(rng.choices(string.digits, k=17)),
            away_address=away_address,
            away_region=away_region,
        )


def _unique(seen: set[str], draw: Callable[[], str]) -> str:
    value = draw()
    while value in seen:
        value = draw()
    seen.add(value)
    return value


def _name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.03 else rng.choice(SURNAMES)
    given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2, 2))))
    return surname + given


def _mobile(rng: random.Random) -> str:
    return "1" + str(rng.randint(3, 9)) + "".join(rng.choices(string.digits, k=9))


def _ip(rng: random.Random) -> str:
    return ".".join(
        str(n)
        for n in (
            rng.choice(CN_FIRST_OCTETS),
            rng.randint(1, 254),
            rng.randint(0, 255),
            rng.randint(1, 254),
        )
    )


def _mail(rng: random.Random) -> str:
    domain = rng.choice(MAIL_DOMAINS)
    if domain == "qq.com":
        local = str(rng.randint(10_000_000, 3_999_999_999))
    else:
        letters = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8)))
        local = letters + str(rng.randint(1, 9999))
    return f"{local}@{domain}"


def _address(rng: random.Random, table: tuple[tuple[str, str, str, str], ...]) -> tuple[str, str]:
    province, city, district, region = rng.choice(table)
    place = province + district if province == city else province + city + district
    building = rng.randint(1, 32)
    unit = rng.randint(1, 6)
    room = rng.randint(1, 33) * 100 + rng.randint(1, 4)
    address = (
        f"{place}{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.choice(COMPOUNDS)}"
        f"{building}栋{unit}单元{room}室"
    )
    return address, region
