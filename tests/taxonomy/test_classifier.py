"""The keyword + n-gram classifier: realistic reports land in the right category; it never fails."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxonomy.catalogue import Catalogue, load_default_catalogue, parse_catalogue
from taxonomy.classifier import FALLBACK_SCORE, Candidate, Classifier, normalize

# What residents and grid workers actually write (sentences, not keyword lists) -> category.
REPORTS = [
    ("隔壁邻居天天在门口堆东西，说了也不听，两家吵了好几次", "01"),
    ("物业公司收了物业费什么都不管，小区电梯维修基金也不公开", "01"),
    ("我家楼上每天晚上拖动家具，跟他们说了好几次都不改", "01"),
    ("健身房老板跑路了，我们办的卡退不了钱", "01"),
    ("两兄弟为了分老屋的宅基地吵到村委会来了", "01"),
    ("房东不退押金，还说我弄坏了他的家具", "01"),
    ("村里那间出租屋晚上经常有一群人聚在一起打麻将赌钱", "02"),
    ("最近小区有个陌生男子老是在单元门口徘徊，很可疑", "02"),
    ("街口两伙人打起来了，有人拿着刀", "02"),
    ("我的电瓶车昨晚停在楼下被人偷了", "02"),
    ("有人在公园里卖冰毒，很多年轻人去买", "02"),
    ("接到电话说我涉嫌洗钱要转账到安全账户，是不是骗子", "02"),
    ("晚上有几个人在停车场里撬车门", "02"),
    ("这个按摩店晚上门口站着几个衣着暴露的女的在招揽客人", "02"),
    ("路边那家五金店门口摆了好多液化气罐，没人看管", "03"),
    ("厨房闻到很重的煤气味，怀疑燃气泄漏", "03"),
    ("工地脚手架上的工人都没戴安全帽，太危险了", "03"),
    ("这个小作坊里面又住人又生产，还堆着很多天那水", "03"),
    ("小区电梯困人了，里面有个老人", "03"),
    ("五金厂车间里的冲床没有防护罩，工人手指被压伤了", "03"),
    ("有人在小卖部偷偷卖散装汽油", "03"),
    ("小区楼道里有人给电动车充电", "04"),
    ("商场后面的消防通道被货车和杂物堵死了", "04"),
    ("三楼阳台冒出浓烟，好像着火了，快来人", "04"),
    ("这栋楼的灭火器都过期了，消防栓也没有水带", "04"),
    ("出租屋的窗户都装了防盗网封死了，着火了都逃不出来", "04"),
    ("楼梯间堆满了纸皮和旧家具", "04"),
    ("出租屋里到处私拉乱接电线，插排上插满了东西", "04"),
    ("一楼的商铺晚上关门后里面还住着人，门口堆着泡沫和纸箱", "04"),
    ("十字路口的红绿灯坏了，一直不亮，车都乱开", "05"),
    ("小区门口一辆车乱停挡住了出口，进出很不方便", "05"),
    ("佛山大道上有个大坑，电动车经过差点摔倒", "05"),
    ("建议在学校门口增设一个斑马线", "05"),
    ("路边有辆旧面包车停了一年多都没动过，轮胎都瘪了", "05"),
    ("早上下班高峰这个路口堵车堵得很厉害，还有人逆行", "05"),
    ("学校门口的斑马线都磨没了，小孩过马路很危险", "05"),
    ("泥头车在市区里开得飞快，还闯红灯", "05"),
    ("菜市场门口垃圾成堆好几天没人清理，臭气熏天", "06"),
    ("天桥底下有很多走鬼乱摆卖，晚上特别多", "06"),
    ("电线杆和墙上贴满了办证的小广告", "06"),
    ("小区垃圾桶满了溢出来没人收", "06"),
    ("人行道上一地的落叶和泥沙，好几天没人扫", "06"),
    ("那家快餐店把桌椅摆到人行道上，行人都没法走", "06"),
    ("绿化带里的树被人砍了好几棵，还在里面种菜", "06"),
    ("巷子里有人乱扔装修垃圾，堆了一大堆", "06"),
    ("店门口挂了一条很长的横幅，风一吹很危险", "06"),
    ("小区门口的垃圾站很臭，垃圾桶都坏了", "06"),
    ("楼下餐馆油烟太大熏得窗户都不能开", "07"),
    ("河涌里发黑发臭有人偷排污水", "07"),
    ("附近工厂晚上偷偷排放废气，刺鼻的味道", "07"),
    ("隔壁工地半夜还在打桩，吵得睡不着", "07"),
    ("有人在空地上焚烧垃圾，烟很大", "07"),
    ("这条河最近飘着很多死鱼，水是黑色的", "07"),
    ("楼下广场舞音响开得太大声了，每晚到十点", "07"),
    ("有人把一车工业废渣倒在村边的空地上", "07"),
    ("隔壁那家印染厂排出来的水是红色的，直接流到河涌里", "07"),
    ("烧烤摊每天晚上烟熏火燎，楼上的住户窗都不敢开", "07"),
    ("石湾镇街道某路口井盖丢失，很危险", "08"),
    ("公园里的健身器材坏了好久了，单杠都断了", "08"),
    ("我们这条街的路灯晚上都不亮，黑漆漆的", "08"),
    ("马路边的护栏被车撞歪了一直没修", "08"),
    ("小区下水道堵了，污水冒出来流得满地都是", "08"),
    ("公交站的候车亭玻璃被打碎了", "08"),
    ("电线杆上的电线掉下来垂到地面了，小孩经过很危险", "08"),
    ("小区里的滑梯坏了，有个螺丝露出来，怕小孩受伤", "08"),
    ("公厕里面的水龙头坏了，一直在漏水，也没有人打扫", "08"),
    ("沙井盖松动了，车压过去哐哐响", "08"),
    ("楼顶有人在违规加建铁皮房", "09"),
    ("隔壁在农田里偷偷建房子，周末还在施工", "09"),
    ("有人在自己家天台上搭了一个大棚子", "09"),
    ("邻居装修把承重墙砸掉了，楼上都开裂了", "09"),
    ("村里有人在鱼塘边上搭建了一排铁皮屋", "09"),
    ("对面楼晚上偷偷在加层，已经盖到第五层了", "09"),
    ("街边那家卤味店没有健康证，后厨很脏", "10"),
    ("在超市买的牛奶过期了还在卖", "10"),
    ("一家人吃了外卖以后上吐下泻，怀疑食物中毒", "10"),
    ("路边有个没有招牌的小作坊在做凉茶和卤味，卫生很差", "10"),
    ("药店卖处方药不要处方，还推销保健品给老人", "10"),
    ("菜市场有人卖注水肉", "10"),
    ("面包店里卖的蛋糕发霉了", "10"),
    ("在这家饭店吃饭，菜里吃出了一只蟑螂", "10"),
    ("这个水果摊的秤不准，买一斤少了二两", "11"),
    ("那家店卖的都是假货，冒牌的名牌包", "11"),
    ("景区附近的停车场乱收费，随便开价", "11"),
    ("这个店没有营业执照也在营业好几年了", "11"),
    ("手机店说好的价格付款时坐地起价", "11"),
    ("网上买的东西是三无产品，商家不给退", "11"),
    ("市场里的猪肉档用鬼秤", "11"),
    ("家门口积水好多天了蚊子很多", "12"),
    ("小区后面的空地有很多老鼠，晚上到处跑", "12"),
    ("我们村有人发烧关节痛还出皮疹，担心是基孔肯雅热", "12"),
    ("楼下的空花盆和旧轮胎里全是积水，长了好多孑孓", "12"),
    ("小区里有条流浪狗咬伤了一个小孩", "12"),
    ("村口有一家黑诊所，没有执照也在给人打针输液", "12"),
    ("小区绿化带里好多废弃的泡沫箱积满了雨水，蚊子特别多", "12"),
    ("楼道里有只死老鼠，好几天了都没人处理", "12"),
    ("工地拖欠我们三个月工资了", "13"),
    ("公司不给我们买社保，也不签劳动合同", "13"),
    ("老板无故把我辞退了，一分钱补偿都不给", "13"),
    ("包工头跑路了，我们二十多个工人的工钱都没着落", "13"),
    ("厂里天天强制加班到晚上十一点，加班费也不给", "13"),
    ("我在厂里受了工伤，老板不肯赔钱", "13"),
    ("干了半年都没发工资，老板一直拖着", "13"),
    ("这套房子隔了十几个房间出租，住了好多人，群租很危险", "14"),
    ("出租屋里新搬来好几个租客都没有登记", "14"),
    ("老房子的外墙开裂了，墙皮一直往下掉", "14"),
    ("地下室住了好几户人，又潮湿又没有窗", "14"),
    ("我想把户口迁到这边来，需要去哪里办", "14"),
    ("我家房子墙上出现了很大的裂缝，担心会塌", "14"),
    ("这栋楼住了很多外地来打工的人，都没办居住证", "14"),
    ("楼下有个精神病人又发病了，拿着棍子到处砸东西", "15"),
    ("对面楼的独居老人好几天没出门了，敲门也没人应", "15"),
    ("桥底下睡着一个流浪汉，天气冷了很可怜", "15"),
    ("社区有个刑满释放的人最近经常喝酒闹事", "15"),
    ("有两个小孩父母都在外地打工，跟着爷爷奶奶也没人管，已经辍学了", "15"),
    ("社区里有个孤寡老人摔倒在家里了，没人知道", "15"),
    ("我隔壁的精神病患者最近没按时吃药，经常半夜大喊大叫", "15"),
    ("暴雨过后路口水浸到膝盖，车都过不去", "16"),
    ("台风把路边的大树刮倒了，压住了一辆车", "16"),
    ("后山发生山体滑坡，泥土冲到了房子旁边", "16"),
    ("路中间的自来水管爆了，水喷得很高", "16"),
    ("小区地下车库进水了，很多车被淹", "16"),
    ("马路中间突然塌陷了一个大洞", "16"),
    ("化工厂那边传来爆炸声，还有很刺鼻的气味", "16"),
    ("台风过后小区里好多树枝断了挡住了路", "16"),
    ("山边的挡土墙出现裂缝，下雨后有泥土往下滑", "16"),
    ("我们小区从早上开始停水，到现在还没来水", "17"),
    ("整栋楼突然停电了，电梯里可能有人", "17"),
    ("请问办理居住证需要什么材料", "17"),
    ("家里生活很困难，想申请低保不知道怎么办", "17"),
    ("家里水压很小，洗澡都没水", "17"),
    ("我们这片经常跳闸断电，电压很不稳", "17"),
    ("我想咨询一下高龄津贴怎么申请", "17"),
    ("我家电表走得特别快，电费比以前贵了一倍", "17"),
    ("我妈八十多岁了，想问问能不能进公办养老院", "17"),
]

# A few where the subcategory matters for dispatch, not just the category.
SUBCATEGORY_REPORTS = [
    ("石湾镇街道某路口井盖丢失，很危险", "0801"),
    ("小区楼道里有人给电动车充电", "0402"),
    ("工地拖欠我们三个月工资了", "1301"),
    ("家门口积水好多天了蚊子很多", "1201"),
    ("楼下餐馆油烟太大熏得窗户都不能开", "0703"),
    ("河涌里发黑发臭有人偷排污水", "0702"),
    ("工厂晚上偷偷把污水直排到路边的水沟里", "0701"),
    ("天桥底下有很多走鬼乱摆卖，晚上特别多", "0606"),
    ("隔壁在楼顶加建了一层，还封了阳台", "0902"),
    ("厨房闻到很重的煤气味，怀疑燃气泄漏", "0303"),
    ("请问办理居住证需要什么材料", "1705"),
]

FALLBACK = ("17", "1707")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_default_catalogue())


def _check_result(result: list[Candidate], limit: int = 5) -> None:
    """Shared invariants: non-empty, within limit, scores in [0, 1], best first, ties by code."""
    assert 1 <= len(result) <= max(1, limit)
    catalogue = load_default_catalogue()
    for cand in result:
        assert 0.0 <= cand.score <= 1.0
        assert catalogue.category_of(cand.subcategory_code).code == cand.category_code
    keys = [(-c.score, c.subcategory_code) for c in result]
    assert keys == sorted(keys)
    assert len({c.subcategory_code for c in result}) == len(result)


@pytest.mark.parametrize(("text", "expected"), REPORTS, ids=[t for t, _ in REPORTS])
def test_report_classified_to_expected_category(
    classifier: Classifier, text: str, expected: str
) -> None:
    result = classifier.classify(text)
    _check_result(result)
    assert result[0].category_code == expected, [
        (c.subcategory_code, classifier.catalogue.subcategory(c.subcategory_code), c.score)
        for c in result
    ]


def test_every_category_is_exercised() -> None:
    assert {expected for _, expected in REPORTS} == {f"{i:02d}" for i in range(1, 18)}
    assert len(REPORTS) >= 25


@pytest.mark.parametrize(("text", "expected"), SUBCATEGORY_REPORTS)
def test_report_classified_to_expected_subcategory(
    classifier: Classifier, text: str, expected: str
) -> None:
    assert classifier.classify(text)[0].subcategory_code == expected


def test_category_for(classifier: Classifier) -> None:
    assert classifier.category_for("小区楼道里有人给电动车充电") == "04"
    assert classifier.category_for("") == "17"


def test_longer_keyword_wins_over_the_word_inside_it(classifier: Classifier) -> None:
    # "垃圾桶满" contains "垃圾", but the full bin is the more specific report
    assert classifier.classify("垃圾桶满了")[0].subcategory_code == "0603"


def test_repeated_mentions_raise_the_score(classifier: Classifier) -> None:
    once = classifier.classify("井盖")[0]
    twice = classifier.classify("井盖，井盖又不见了，井盖")[0]
    assert once.subcategory_code == twice.subcategory_code == "0801"
    assert twice.score > once.score


@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n\r", "，。！？、……", "🙂🙂🙂", "\x00\x01\x7f", "好的"]
)
def test_nothing_to_match_returns_the_fallback(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text)
    assert len(result) == 1
    assert (result[0].category_code, result[0].subcategory_code) == FALLBACK
    assert result[0].score == FALLBACK_SCORE
    assert result[0] == classifier.fallback


def test_normalisation() -> None:
    assert normalize("ＫＴＶ　噪音！！") == "ktv噪音"
    assert normalize(" 井 盖\u3000丢失，\n很危险 ") == "井盖丢失很危险"
    assert normalize("１２３４５热线") == "12345热线"


def test_full_width_and_spaced_text_still_matches(classifier: Classifier) -> None:
    assert classifier.classify("楼下ＫＴＶ太吵了")[0].category_code == "07"
    assert classifier.classify("电 动 车 楼 道 充 电")[0].subcategory_code == "0402"


def test_very_long_text(classifier: Classifier) -> None:
    text = ("石湾镇街道某路口井盖丢失，很危险。" * 1200)[:20_000]
    assert len(text) == 20_000
    result = classifier.classify(text)
    _check_result(result)
    assert result[0].subcategory_code == "0801"
    rng = random.Random(12345)
    noise = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(20_000))
    _check_result(classifier.classify(noise))


@pytest.mark.parametrize(
    "text",
    [
        "\ud800井盖丢失\udfff",
        "\udc00",
        "井盖\x00丢失\x1b[31m",
        "\u200b\u200d\ufeff\u2028",
        "👨‍👩‍👧‍👦 小区楼道里有人给电动车充电 🔥",
        "\U0010ffff" * 50,
        "a" * 20_000,
        "ｱｲｳ",
    ],
)
def test_odd_input_never_raises(classifier: Classifier, text: str) -> None:
    _check_result(classifier.classify(text))


@pytest.mark.parametrize("limit", [-3, 0, 1, 2, 50])
def test_limit(classifier: Classifier, limit: int) -> None:
    result = classifier.classify("石湾镇街道某路口井盖丢失，很危险", limit=limit)
    assert 1 <= len(result) <= max(1, limit)
    _check_result(result, limit)


def test_deterministic_across_instances(classifier: Classifier) -> None:
    other = Classifier(load_default_catalogue())
    for text, _ in REPORTS:
        assert other.classify(text, limit=10) == classifier.classify(text, limit=10)


def test_candidate_is_frozen() -> None:
    cand = Candidate("08", "0801", 0.5)
    with pytest.raises(AttributeError):
        cand.score = 1.0  # type: ignore[misc]


def test_fallback_without_category_17() -> None:
    data: dict[str, Any] = load_default_catalogue().model_dump(mode="json")
    data["categories"] = [c for c in data["categories"] if c["code"] != "17"]
    small: Catalogue = parse_catalogue(data)
    clf = Classifier(small)
    assert clf.fallback.subcategory_code == "1608"
    assert clf.classify("")[0].subcategory_code == "1608"


@cache
def _shared() -> Classifier:
    """One instance for the property tests: building the indexes per example is wasteful."""
    return Classifier(load_default_catalogue())


_KEYWORDS = sorted(
    {k for _, sub in load_default_catalogue().iter_subcategories() for k in sub.keywords}
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    _check_result(_shared().classify(text))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=200))
def test_never_raises_on_any_code_point_including_surrogates(text: str) -> None:
    _check_result(_shared().classify(text))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_KEYWORDS), st.text(max_size=4)), max_size=12).map("".join),
    st.integers(min_value=-2, max_value=12),
)
def test_never_raises_on_keyword_soup(text: str, limit: int) -> None:
    _check_result(_shared().classify(text, limit=limit), limit)
