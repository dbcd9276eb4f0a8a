"""Generate hopthu's own labelled chat corpus (nlp/corpus/chat.csv) — seeded, so `make model` is reproducible.

Every line here was written for hopthu (templates, slot values, review clauses), so the corpus and the model
trained on it are the project's, under its licence. Templates carry an intent and a sentiment; slot values span
five shop domains; each generated line may then lose its diacritics, get teencode, a typo, emoji, or a different
casing, the way customers actually type. See nlp/corpus/README.md for the labelling guidelines.

    python -m nlp.corpus.generate            # writes nlp/corpus/chat.csv
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path

from nlp.text import fold

SEED = 20251125
OUT = Path(__file__).with_name("chat.csv")

DOMAINS = {
    "fashion": [
        "áo thun", "áo sơ mi", "váy maxi", "quần jean", "đầm công sở", "áo khoác", "quần short", "chân váy",
        "áo hoodie", "giày sneaker", "túi xách", "dép sandal", "áo len", "set đồ bộ", "quần tây", "áo croptop",
    ],
    "cosmetics": [
        "kem chống nắng", "sữa rửa mặt", "son kem", "serum vitamin C", "toner", "kem dưỡng ẩm", "nước tẩy trang",
        "mặt nạ", "nước hoa", "dầu gội", "phấn phủ", "kem trị mụn", "sữa tắm", "mascara",
    ],
    "phones": [
        "iPhone 15", "Samsung A55", "tai nghe bluetooth", "ốp lưng", "sạc dự phòng", "cáp sạc", "Redmi Note 13",
        "đồng hồ thông minh", "loa bluetooth", "kính cường lực", "máy tính bảng", "củ sạc nhanh", "chuột không dây",
    ],
    "food": [
        "bánh tráng trộn", "trà sữa", "cà phê rang xay", "hạt điều", "bánh bông lan", "khô gà", "mật ong",
        "combo lẩu", "bánh trung thu", "yến sào", "trà ô long", "chà bông", "bánh mì", "nem chua",
    ],
    "services": [
        "gói gội đầu dưỡng sinh", "liệu trình triệt lông", "khóa học tiếng Anh", "gói chụp ảnh cưới",
        "dịch vụ vệ sinh máy lạnh", "gói massage", "lịch cắt tóc", "phòng đôi", "tour Đà Lạt", "gói tập gym",
        "lớp yoga", "dịch vụ sửa điện thoại", "gói làm nail",
    ],
}  # fmt: skip
SIZES = ["S", "M", "L", "XL", "XXL", "38", "39", "40", "41", "27", "29", "free size"]
COLORS = ["đen", "trắng", "đỏ", "xanh navy", "hồng", "be", "xám", "vàng", "xanh lá", "nâu", "tím", "kem"]
PLACES = [
    "Đà Nẵng", "Hà Nội", "Sài Gòn", "Cần Thơ", "Huế", "Hải Phòng", "Nha Trang", "Vũng Tàu", "Bình Dương",
    "Đồng Nai", "Quảng Ninh", "Nghệ An", "Gia Lai", "Đắk Lắk", "Cà Mau", "Thanh Hóa", "Long An", "Lào Cai",
    "quận 7", "Thủ Đức", "Cầu Giấy", "Biên Hòa", "Buôn Ma Thuột", "Phú Quốc", "tỉnh", "huyện",
]  # fmt: skip
NAMES = ["Nguyễn Thị Lan", "Trần Văn Hùng", "Lê Minh Anh", "Phạm Thu Trang", "Hoàng Đức", "Vũ Ngọc Mai", "Đặng Quang"]
STREETS = ["Nguyễn Trãi", "Lê Lợi", "Trần Hưng Đạo", "Hai Bà Trưng", "Lý Thường Kiệt", "Nguyễn Huệ", "Phan Đình Phùng"]
BANKS = ["Vietcombank", "Techcombank", "MB", "ACB", "BIDV", "VPBank", "TPBank"]
TIMES = ["sáng mai", "chiều nay", "tối nay", "thứ 7", "chủ nhật", "9h sáng mai", "3h chiều", "cuối tuần"]
ME = ["em", "mình", "tôi", "chị", "anh", "em", "mình"]
YOU = ["shop", "shop ơi", "ad", "ad ơi", "bạn", "chị ơi", "em ơi", "shop", "c", "sốp"]
PT = ["ạ", "ạ", "nhé", "nha", "vậy", "", "", "shop", "ạ shop", "nhỉ", "thế", "không ạ"]


def _phone(r: random.Random) -> str:
    head = r.choice(["091", "098", "090", "093", "097", "086", "035", "070", "077", "083"])
    rest = "".join(str(r.randint(0, 9)) for _ in range(7))
    s = head + rest
    return r.choice([s, f"{s[:4]} {s[4:7]} {s[7:]}", f"{s[:4]}.{s[4:7]}.{s[7:]}", "+84" + s[1:]])


def _address(r: random.Random) -> str:
    return (
        f"{r.randint(1, 300)} {r.choice(STREETS)}, phường {r.randint(1, 15)}, "
        f"{r.choice(['quận 3', 'quận 10', 'Bình Thạnh', 'Cầu Giấy', 'Hải Châu', 'Ninh Kiều'])}, "
        f"{r.choice(['TP.HCM', 'Hà Nội', 'Đà Nẵng', 'Cần Thơ'])}"
    )


def _price(r: random.Random) -> str:
    return r.choice(["150k", "199k", "250.000đ", "1tr2", "2 triệu", "350 nghìn", "89k", "1.500.000", "450k", "99k"])


def _code(r: random.Random) -> str:
    return r.choice(["DH", "SPX", "GHN", "VN", "#"]) + str(r.randint(100000, 99999999))


SLOTS = {
    "me": lambda r, d: r.choice(ME),
    "you": lambda r, d: r.choice(YOU),
    "pt": lambda r, d: r.choice(PT),
    "p": lambda r, d: r.choice(DOMAINS[d]),
    "s": lambda r, d: r.choice(SIZES),
    "c": lambda r, d: r.choice(COLORS),
    "loc": lambda r, d: r.choice(PLACES),
    "ph": lambda r, d: _phone(r),
    "addr": lambda r, d: _address(r),
    "pr": lambda r, d: _price(r),
    "code": lambda r, d: _code(r),
    "n": lambda r, d: str(r.randint(1, 5)),
    "n2": lambda r, d: str(r.randint(1, 3)),
    "d": lambda r, d: str(r.randint(3, 15)),
    "name": lambda r, d: r.choice(NAMES),
    "bank": lambda r, d: r.choice(BANKS),
    "t": lambda r, d: r.choice(TIMES),
    "h": lambda r, d: str(r.randint(50, 75)),
    "w": lambda r, d: str(r.randint(42, 80)),
    "pct": lambda r, d: r.choice(["10", "15", "20", "30", "50"]),
}

# (template, sentiment) per intent; sentiment "=" means the intent's default.
T: dict[str, tuple[str, list[str]]] = {}


def intent(name: str, default: str, lines: str) -> None:
    T[name] = (default, [ln.strip() for ln in lines.strip().splitlines() if ln.strip()])


intent(
    "greeting",
    "neutral",
    """
chào {you}
alo {you}
hello {you}
hi shop
xin chào
chào shop, {me} cần tư vấn chút
shop ơi có ai không
chào buổi sáng shop
có ai trực page không ạ
hế lô shop
e chào shop ạ
shop ơi cho em hỏi chút
chào bạn
alo alo
dạ chào shop
hi
hello
shop oi
chào em, chị cần tư vấn
shop có đó không
xin chào, tôi muốn hỏi chút thông tin
chào ad nhé
chào buổi tối shop
{you} ơi em hỏi xíu
alo shop ơi
chào shop nha {pt}
hi ad, cho mình hỏi
xin chào shop, chúc shop một ngày tốt lành|positive
chào shop xinh đẹp|positive
có ai ở đó không
chào anh chị
mình chào shop
chào cửa hàng
""",
)
intent(
    "thanks_bye",
    "positive",
    """
cảm ơn {you} nhiều {pt}
thanks shop
ok cảm ơn {you}
em cảm ơn ạ
cám ơn bạn nhé
dạ vâng em cảm ơn
ok shop, tạm biệt|neutral
cảm ơn shop đã tư vấn nhiệt tình
thank you shop
tks ad
ok e hiểu rồi, cảm ơn
vậy thôi ạ, cảm ơn shop
cảm ơn, chúc shop buôn may bán đắt
thôi để em suy nghĩ thêm, cảm ơn shop|neutral
bye shop|neutral
hẹn gặp lại shop nhé
ok nhé, cảm ơn
mình nhận được hàng rồi, cảm ơn shop nhiều
chúc shop ngày mới vui vẻ
cảm ơn em nhiều nha
dạ em cảm ơn chị
cảm ơn shop, hàng đẹp lắm
cảm ơn bạn đã hỗ trợ
tạm biệt|neutral
thôi chào shop|neutral
ok cám ơn nhiều
rất cảm ơn shop
cảm ơn shop đã giao nhanh
dạ em cảm ơn, chúc shop đắt hàng
vâng cảm ơn ạ
ok thank you
tks shop nhiều
cảm ơn {you} {pt}
""",
)
intent(
    "ask_price",
    "neutral",
    """
{p} giá bao nhiêu {pt}
giá {p} sao {you}
{p} bao nhiêu tiền
bao nhiêu 1 cái {you}
giá sao ạ
cho em xin giá {p}
{p} này bao nhiêu vậy
báo giá giúp em {p} với
size {s} giá bao nhiêu
giá sỉ {p} thế nào
mua {n} cái thì giá bao nhiêu
shop ơi giá {p} màu {c} bao nhiêu
inbox giá giúp em
ib giá {p} ạ
xin giá
giá lẻ bao nhiêu ạ
{p} mấy tiền vậy
{p} bán sao shop
cho hỏi giá {p}
giá này đã gồm phí ship chưa
combo {n} {p} giá bao nhiêu
{p} giá {pr} phải không ạ
bao nhiêu 1 hộp vậy
1kg giá sao shop
giá {p} bên mình hiện tại là bao nhiêu
báo giá {p} giúp mình
{p} có đắt không shop
mẫu này giá nhiêu
hết bao nhiêu tiền tất cả
tổng đơn hết bao nhiêu ạ
giá {pr} còn bớt được không
giá lấy sỉ từ {n} cái là bao nhiêu
cái này bán nhiêu shop
cho xin bảng giá
{p} bản cao nhất giá sao
{me} hỏi giá {p} size {s}
giá ib là bao nhiêu vậy ạ
""",
)
intent(
    "ask_availability",
    "neutral",
    """
còn size {s} không {pt}
{p} còn hàng không
{p} màu {c} còn không {you}
size {s} màu {c} còn không
còn {p} không ạ
hết hàng chưa shop
có size {s} không
{p} có màu {c} không
shop còn {p} size {s} không
khi nào có hàng lại ạ
có sẵn hàng không hay phải đặt trước
{p} còn màu nào
còn mẫu này không shop
mẫu trong ảnh còn không ạ
có size lớn hơn không
có bigsize không shop
bên mình còn {p} không
{p} hết rồi hả shop
còn hàng ko shop
size {s} hết chưa
còn bản 256GB không
có màu khác không ạ
mai có hàng không shop
có sẵn ở kho {loc} không
màu {c} size {s} còn hàng không {you}
{p} về hàng chưa shop
còn slot {t} không
{t} còn lịch trống không
còn phòng {t} không ạ
mẫu này còn đủ size không
{p} còn không {you}
còn size nhỏ hơn không
size {s} còn không ạ
bao giờ có hàng lại vậy
hàng order hay có sẵn ạ
còn {p} màu {c} không shop
mẫu này còn không ạ
""",
)
intent(
    "ask_product_info",
    "neutral",
    """
{p} chất liệu gì vậy
{p} có bị phai màu không
{me} cao 1m{h} nặng {w}kg mặc size gì
{me} nặng {w}kg thì mặc size nào vừa
{p} dùng cho da dầu được không
{p} có chính hãng không
bảo hành bao lâu vậy shop
{p} xuất xứ ở đâu
hạn sử dụng đến khi nào
{p} có giống hình không
cho xem ảnh thật được không
{p} có co giãn không
vải có nóng không shop
pin dùng được bao lâu
{p} có chống nước không
{p} dùng như thế nào
thành phần có cồn không
bầu bí dùng được không
{p} có mấy màu
size {s} dài bao nhiêu
có bảng size không shop
loại này với loại kia khác gì nhau
máy mới hay cũ vậy
hàng có fullbox không
{p} bảo quản thế nào
để được bao lâu
ăn có cay không
có phù hợp làm quà không
có video thật không ạ
form rộng hay ôm ạ
mùi có nồng không
{p} này hàng auth hay rep
da nhạy cảm dùng được không
{p} nặng bao nhiêu
{p} có mấy dung tích
khóa học kéo dài bao lâu
một buổi {p} mất bao lâu
{p} có hợp với người lớn tuổi không
{p} có ship kèm hướng dẫn sử dụng không
máy có hỗ trợ sạc nhanh không
{p} có bị xù lông không
giặt máy được không
""",
)
intent(
    "order",
    "neutral",
    """
lấy cho {me} {n} {p} size {s} màu {c}
chốt đơn {p} màu {c} nhé
em đặt {n} cái
mình muốn mua {p}
đặt hàng: tên {name}, sđt {ph}, địa chỉ {addr}
gửi em {n} {p} về {addr}
lên đơn giúp em
chốt
em lấy mẫu này nhé
đặt {n} hộp {p}, sđt {ph}
{name} - {ph} - {addr}
cho chị 1 {p} size {s}
ok lấy luôn
em muốn đặt lịch {p} vào {t}
đặt bàn {n} người lúc {t}
mình order {n} {p} nhé
ship cho em {p} size {s} nha
em chốt {n} {p} ạ
ok shop gửi em cái màu {c} nha
lấy {p} màu {c} size {s} ạ
đặt giúp mình {n} phần {p}
thêm 1 {p} vào đơn của em
e muốn mua sỉ {n} cái
book lịch {t} cho {me} nhé
sdt {ph}, giao giờ hành chính
tên {name}, sđt {ph}
địa chỉ nhận hàng: {addr}
em lấy {n} cái size {s} nhé shop
mua {p}
mình lấy {p} nhé, gửi về {addr}
áo đẹp quá, em lấy {n} cái|positive
thích quá, chốt luôn {p} màu {c}|positive
chị đặt {n} {p} giao {t} nhé
em muốn đặt hàng
đặt hàng như thế nào vậy shop
cho em mua {n} {p}
ok vậy lấy cho em cái màu {c}
gói quà giúp em luôn nhé
""",
)
intent(
    "order_status",
    "neutral",
    """
đơn hàng của {me} đến đâu rồi
kiểm tra giúp em đơn {code}
bao giờ {me} nhận được hàng
đơn {code} giao chưa shop
em đặt hôm thứ 2 mà chưa thấy hàng
shop gửi hàng chưa
mã vận đơn là gì ạ
cho em xin mã vận đơn
đơn của em đang ở đâu rồi
đơn hàng đã xác nhận chưa
hàng đi chưa shop
tracking đơn {code} giúp mình
khi nào đơn được giao
check đơn giúp chị sđt {ph}
shop đã đóng gói đơn của em chưa
đơn hàng {code} của em sao rồi
kiểm tra đơn giúp em với, tên {name}
đơn em đặt {d} ngày rồi vẫn chưa nhận được|negative
sao đơn em vẫn chờ lấy hàng mãi vậy|negative
đơn hàng em đang giao phải không ạ
bên vận chuyển báo giao {t} đúng không
hôm nay em có nhận được hàng không
shop ơi đơn của em gửi đi chưa
đơn {code} hiển thị đã giao mà em chưa nhận|negative
mấy ngày nữa thì tới vậy shop
em muốn biết tình trạng đơn hàng
đơn của em xử lý chưa
cho em hỏi đơn hàng hôm qua
shipper đang giao đơn của em à
""",
)
intent(
    "shipping",
    "neutral",
    """
ship về {loc} bao lâu
phí ship bao nhiêu
có ship COD không
có giao hỏa tốc không
ship ra {loc} mất mấy ngày
có freeship không {you}
đơn bao nhiêu thì được miễn ship
gửi qua GHTK hay viettel post
có giao trong ngày không
có ship quốc tế không
ship đến {loc} tốn bao nhiêu
giao hàng cả cuối tuần không
nội thành {loc} ship bao nhiêu
bao lâu thì nhận được hàng ở {loc}
shop gửi xe khách được không
có được kiểm tra hàng trước khi nhận không
có ship tỉnh không
ship grab được không shop
phí ship về {loc} thế nào
mai ship được không
ship về {loc} mấy ngày {pt}
giao về {loc} có nhanh không
ship {loc} bao nhiêu tiền
bên mình giao bằng đơn vị nào
ship nhanh được không shop, em cần gấp
từ {loc} gửi ra {loc} mất bao lâu
có ship tận nhà không
ship hỏa tốc bao nhiêu
giao giờ hành chính hay buổi tối được không
ở {loc} thì phí vận chuyển bao nhiêu
có miễn phí giao hàng không
ship về {loc} được không shop
mất mấy ngày mới tới {loc}
""",
)
intent(
    "payment",
    "neutral",
    """
thanh toán bằng cách nào
có nhận chuyển khoản không
cho em xin số tài khoản
em chuyển khoản rồi nhé
em ck rồi shop check giúp
có trả góp không
thanh toán khi nhận hàng được không
stk {bank} bao nhiêu
quẹt thẻ được không
có thanh toán momo không
em đã chuyển {pr}, nội dung là {ph}
có cần cọc trước không
cọc bao nhiêu vậy shop
trả góp 0% không shop
thanh toán qua zalopay được không
em chuyển nhầm số tiền, shop kiểm tra giúp
đã chuyển khoản, shop kiểm tra giúp
mã QR thanh toán đâu shop
COD hay phải chuyển khoản trước
nhận hàng rồi trả tiền được không
số tài khoản {bank} của shop là gì
em thanh toán rồi, gửi bill nhé
shop nhận tiền chưa ạ
chuyển khoản ghi nội dung gì
có thanh toán bằng thẻ tín dụng không
trả tiền mặt được không
em chuyển khoản qua {bank} được không
có xuất hóa đơn VAT không
trả trước một nửa được không
em chuyển {pr} rồi đó
""",
)
intent(
    "promotion",
    "neutral",
    """
đang có khuyến mãi gì không
có mã giảm giá không shop
sale đến bao giờ
mua 2 có được giảm không
có voucher không {you}
chương trình mua 1 tặng 1 còn không
flash sale mấy giờ
khách quen có được giảm giá không
có quà tặng kèm không
black friday có sale không
mã FREESHIP còn dùng được không
sinh viên có được giảm không
đợt này có ưu đãi gì
giảm {pct}% hả shop
combo có rẻ hơn không
có tích điểm không
có chương trình thành viên không
có deal gì hot không
giá sale còn áp dụng không
em nhập mã giảm giá không được|negative
mã giảm {pct}% áp dụng cho đơn bao nhiêu
có sale cuối năm không
tuần này có giảm giá không
mua nhiều có chiết khấu không
có mã giảm giá cho khách mới không
quà tặng là gì vậy shop
có chương trình khuyến mại nào không ạ
livestream có giảm giá không
sale {pct}% đến khi nào
""",
)
intent(
    "return_refund",
    "neutral",
    """
em muốn đổi size {s}
đổi sang màu {c} được không
hàng lỗi thì đổi trả thế nào
chính sách đổi trả ra sao
em muốn trả hàng hoàn tiền
bao lâu thì được hoàn tiền
áo bị rách em muốn đổi|negative
đổi hàng có mất phí không
em nhận sai màu, đổi giúp em|negative
em muốn hủy đơn
hủy đơn {code} giúp em
được đổi trong bao nhiêu ngày
mặc không vừa có đổi được không
khi nào em nhận được tiền hoàn
em gửi trả hàng rồi nhé
{p} không dùng được, em muốn hoàn tiền|negative
shop hoàn tiền cho em chưa
đổi bảo hành ở đâu
cho em đổi sang size {s} nhé
em muốn đổi mẫu khác
hàng bị lỗi, shop đổi cho em cái mới|negative
em muốn trả lại {p}
không ưng có được trả lại không
đổi hàng thì gửi về địa chỉ nào
shop chưa hoàn tiền cho em, đã {d} ngày rồi|negative
hoàn tiền vào tài khoản nào vậy
em đặt nhầm, hủy giúp em nhé
máy bị lỗi, em muốn bảo hành|negative
""",
)
intent(
    "complaint",
    "negative",
    """
hàng giao sai mẫu
{p} bị lỗi đường may
sao giao hàng chậm thế
đặt cả tuần rồi chưa thấy đâu
shop làm ăn kiểu gì vậy
chất lượng quá tệ
không giống hình chút nào
nhắn mãi không ai trả lời
thái độ nhân viên quá kém
hàng bị vỡ khi nhận
thiếu hàng, em đặt {n} mà chỉ có {n2}
kem bôi vào bị nổi mụn
điện thoại sạc không vào
đồ ăn bị thiu rồi
bực mình thật sự
lừa đảo
tôi sẽ báo cáo shop
quá thất vọng về shop
giao hàng sai địa chỉ
shipper thái độ quá tệ
hàng fake
màu khác hoàn toàn so với ảnh
mua lần đầu cũng là lần cuối
tiền mất tật mang
đóng gói cẩu thả, hộp móp méo
{p} dùng 2 ngày đã hỏng
tôi rất không hài lòng
shop trả lời cho có
bán hàng như vậy mà cũng bán
sao shop không trả lời tin nhắn
hàng nhận được bị ướt hết
{p} có mùi lạ, không dùng được
giao thiếu quà tặng
tính sai tiền của em
bị tính phí ship 2 lần
nhân viên nói một đằng làm một nẻo
chờ cả tiếng không ai phục vụ
em rất bức xúc
làm ăn chán quá
size {s} mà mặc như size trẻ em
{p} bị trầy xước hết
hộp bị bóc seal rồi
gọi hotline không ai nghe
{p} nhận được đã hết hạn sử dụng
đặt màu {c} mà giao màu khác
tư vấn sai, mua về không dùng được
hàng lỗi quá shop ơi
sp bị hỏng rồi
{p} bị lỗi rồi shop
lỗi rồi, làm ăn gì kỳ vậy
sao shop giao thiếu vậy
sao nhắn tin không ai rep vậy
đặt size {s} mà giao size khác
{p} dùng không được, phí tiền
chán shop thật sự
shop làm việc quá tệ
hàng về bị móp hết
""",
)
intent(
    "store_info",
    "neutral",
    """
shop ở đâu vậy
địa chỉ cửa hàng ở đâu
shop mở cửa mấy giờ
chủ nhật có mở cửa không
có chi nhánh ở {loc} không
cho em xin địa chỉ shop
em qua xem trực tiếp được không
cửa hàng gần {loc} nhất ở đâu
giờ làm việc của shop
số hotline của shop là gì
có đậu xe ô tô được không
tối nay mấy giờ đóng cửa
showroom ở {loc} địa chỉ sao
shop có bán trên shopee không
có website không shop
shop có cửa hàng ở {loc} không
em ghé shop lúc {t} được không
shop có mấy chi nhánh
lễ tết shop có làm việc không
chi nhánh {loc} mở đến mấy giờ
shop bán online hay có cửa hàng
có thể đến lấy trực tiếp không
cho xin định vị google map của shop
shop ở quận mấy vậy
""",
)
intent(
    "human_handoff",
    "neutral",
    """
cho em gặp nhân viên
cho tôi nói chuyện với người thật
gọi lại cho em theo số {ph}
có ai tư vấn trực tiếp không
bot à? cho gặp người
em muốn nói chuyện với quản lý
nối máy cho em với tư vấn viên
cho xin số điện thoại để gọi
nhân viên đâu hết rồi|negative
em cần người hỗ trợ gấp
gọi cho em được không
cho em gặp chủ shop
tổng đài viên đâu
chuyển cho người phụ trách giúp em
em không muốn nói chuyện với máy|negative
có ai online không, cần gấp
cho mình gặp bạn tư vấn
gặp nhân viên tư vấn
em muốn gọi điện trao đổi
cho xin zalo của nhân viên
admin ơi trả lời em với
người thật đâu
bot trả lời vô dụng quá, cho gặp người|negative
gọi em số {ph} nhé
có nhân viên nào rảnh không
""",
)
intent(
    "other",
    "neutral",
    """
ok
dạ
vâng
ừ
hihi
haha
em xem đã
để em hỏi chồng đã
ok để mình suy nghĩ
hôm nay trời nóng quá
ủa
ờ
thế à
vậy hả
hmm
tuyển cộng tác viên không shop
em là sinh viên
em gửi ảnh nhé
để em xem lại
được rồi
tí em nhắn lại
dạ vâng ạ
oke
ok shop
em đang ở cơ quan
để tối em xem
dạ em biết rồi
à vâng
ok để e tính
em hỏi cho bạn
chờ em chút
shop bán lâu chưa
em thấy quảng cáo trên facebook
ảnh đẹp quá|positive
shop dễ thương quá|positive
""",
)

# Reviews and feedback: opinion clauses combined like real product reviews.
POS = """
sản phẩm tốt
chất lượng tốt
hàng đẹp
giao hàng nhanh
đóng gói cẩn thận
shop phục vụ nhiệt tình
đáng tiền
giá rẻ mà chất lượng
rất hài lòng
sẽ ủng hộ shop lần sau
đúng như mô tả
hàng chuẩn
vải mát
mặc vừa in
màu đẹp
mùi thơm dễ chịu
ăn rất ngon
tuyệt vời
xịn lắm
chắc chắn
pin trâu
dùng rất thích
rất ưng ý
10 điểm không có nhưng
hàng y hình
quá ok
good
sẽ quay lại mua tiếp
đóng gói kỹ
giao đúng hẹn
shop tư vấn nhiệt tình
chất vải đẹp
đường may chắc chắn
da mịn hơn hẳn
dùng thấy hiệu quả
âm thanh hay
hàng chính hãng
giá hợp lý
sản phẩm đẹp hơn mong đợi
rất đáng mua
5 sao cho shop
sản phẩm rất tốt
chất lượng sản phẩm tuyệt vời
hàng đẹp như hình
mình rất thích
giao hàng siêu nhanh
shop dễ thương
đóng gói chắc chắn
rất đẹp
dùng ổn
mua lần thứ 3 rồi vẫn tốt
hàng chất lượng
sản phẩm ok
rất tốt
hàng đẹp lắm
cho shop 5 sao
đẹp lắm luôn
thơm lắm
ngon lắm
xài thích lắm
chất lượng ổn so với giá
mọi thứ đều ổn
không có gì để chê
không bị lỗi gì
hài lòng
yêu shop
sẽ giới thiệu cho bạn bè
vừa vặn
mặc lên tôn dáng
màu y hình
nhận hàng rất ưng
đúng size
hộp đẹp
shipper thân thiện
hàng tốt giá tốt
đẹp
xinh lắm
ưng lắm
xịn xò
chuẩn luôn
vải mềm mịn
đi êm chân
thơm nhẹ
rẻ mà tốt
giao nhanh
nhiệt tình
chu đáo
shop có tâm
shop uy tín
đáng đồng tiền bát gạo
tuyệt
mê luôn
rất đáng tiền
nice
great
perfect
10/10
chất lượng vượt mong đợi
đóng gói đẹp
mẫu mã đẹp
hàng giống hình
giá cả phải chăng
dùng rất thích, da đẹp lên
pin khỏe
máy chạy mượt
âm thanh to rõ
ăn ngon, vừa miệng
đồ ăn còn nóng
hàng mới nguyên seal
màu sắc tươi
mặc rất mát
shop trả lời nhanh
nhân viên dễ thương
giao hàng đúng hẹn, shipper nhiệt tình
mua lần 2 rồi vẫn ưng
hàng ok
cũng được, đáng mua
ổn áp
rất ok
chất lượng ok, giá hợp lý
sản phẩm y mô tả
không có gì để phàn nàn
không thất vọng
giá cả phù hợp
tương xứng với giá tiền
đáng giá
dùng hiệu quả
da ẩm mịn
dễ sử dụng
dễ dùng
sử dụng tốt
hoạt động tốt
chạy êm
bền
cầm chắc tay
nhỏ gọn tiện lợi
tiện lợi
giao khá nhanh
good quality
very good
excellent
ok lắm
đúng hàng
y hình
chính hãng 100%
thấy hiệu quả rõ
form đẹp
sẽ ủng hộ dài dài
đáng để mua
giá tốt
quà tặng dễ thương
nhận đủ hàng
đủ số lượng
rất nhanh
nhanh chóng
""".strip().splitlines()
NEG = """
hàng kém chất lượng
không giống hình
giao sai hàng
chất vải mỏng
đường may xấu
chỉ thừa nhiều
mùi hôi
không đáng tiền
thất vọng
giao hàng chậm
đóng gói sơ sài
bị lỗi
không dùng được
phí tiền
sẽ không mua lại
1 sao
hàng dởm
bị rách
nhỏ hơn so với size
shop không trả lời tin nhắn
màu nhạt hơn ảnh
không như quảng cáo
hơi thất vọng
hạn sử dụng quá gần
không có hạn sử dụng
tệ
chán
bị ẩm
hộp bị móp
thiếu phụ kiện
dùng vài ngày là hỏng
chất lượng kém
hàng không giống mô tả
quá tệ
rất tệ
không hài lòng
giao thiếu hàng
không nên mua
mua về không dùng được
pin nhanh hết
sạc không vào
kêu rè
vải bị xù lông
giặt một lần đã phai màu
bị dị ứng
da nổi mụn
ăn bị đau bụng
vị quá ngọt
không ngon
hàng cũ
bị trầy xước
hàng giả
lừa đảo
giao nhầm màu
size không chuẩn
mặc không vừa
form xấu
không giống như hình
đợi mãi mới nhận được hàng
shop phục vụ kém
thái độ không tốt
tiền nào của nấy
chưa hài lòng
không như mong đợi
kém
dở
không nên mua ở đây
mình rất thất vọng
đóng gói không cẩn thận
hàng bị vỡ
hàng bị lỗi
nhận hàng bị thiếu
không đúng mẫu
không giống ảnh
chất lượng không tốt
sản phẩm không tốt
hàng lỗi
hàng lỗi quá
bị hỏng
hư rồi
tệ thật
không ưng
không thích
xấu
xấu quá
không đẹp
vải mỏng dính
nhăn nhúm
bong tróc
chậm
giao lâu quá
không phản hồi
trả lời chậm
thái độ lồi lõm
chất lượng như hạch
mua về bỏ xó
vứt đi
không xài được
dùng được một lần là hư
màu xấu
chất vải nóng, bí
bị phai màu
mùi khó chịu
bị chảy nước
hàng nhái
không đáng đồng tiền
đắt mà không tốt
không đúng như quảng cáo
kém xa so với hình
hỏng ngay khi mở hộp
bị thiếu
thiếu đồ
giao nhầm
sai size
đường chỉ lỏng lẻo
keo bị bung
không nên mua nha mọi người
mua hàng mà bực cả mình
shop lừa khách
nhân viên bất lịch sự
giao hàng quá chậm
nhận hàng mà thất vọng
không giống mô tả chút nào
hàng kém
chả ra gì
chẳng ra gì
dở tệ
quá dở
chưa ưng lắm
không tốt như mong đợi
không hiệu quả
chẳng thấy hiệu quả
không tương xứng với giá tiền
bị bể
bụi bẩn
hàng rởm
poor quality
bad
very bad
chỉ giao 1 cái
bé xíu
không đúng hàng
không đúng màu
gửi sai màu
bị ố
cũ kỹ
bị rát da
khô da
bị kích ứng
không chấp nhận được
lần sau không mua nữa
chất lượng không tương xứng
phí tiền vô ích
đừng mua
không như hình
không có tác dụng
không thấy tác dụng gì
sai mẫu
thất vọng về chất lượng
không đúng size
khó dùng
không bền
mau hư
máy kêu ồn
nóng máy
sạc chậm
bị lỗi ngay lần đầu dùng
""".strip().splitlines()
JOIN = [", ", ". ", " và ", ", ", " , ", " lại ", " mà còn ", ". ", ", "]
INTENS = ["", "", "", "rất ", "quá ", "cực kỳ ", "hơi ", "khá "]
PRE = ["", "", "", "mình thấy ", "nói chung ", "lần đầu mua mà ", "đã nhận hàng, ", "hàng về rồi, ", "shop ơi "]
POS_END = ["", "", "", " 👍", " 😍", " ❤️", " nhé", " nha shop", " :)", " luôn", " 5 sao"]
NEG_END = ["", "", "", " 😡", " 😞", " 👎", " :(", " haizz", " thật sự", " nha"]


def _review(r: random.Random, positive: bool, domain: str) -> str:
    own, other = (POS, NEG) if positive else (NEG, POS)
    k = r.choice([1, 1, 2, 2, 2, 3, 3, 4])
    parts = [r.choice(own) for _ in range(k)]
    if k > 1 and r.random() < 0.5:
        parts[0] = f"{r.choice(DOMAINS[domain])} {parts[0]}"
    text = parts[0]
    for p in parts[1:]:
        text += r.choice(JOIN) + p
    # Mixed reviews: the clause after "nhưng"/"tuy nhiên" carries the verdict.
    if r.random() < 0.18:
        text = r.choice(other) + r.choice([" nhưng ", " tuy nhiên ", ", có điều ", " nhưng mà "]) + text
    return r.choice(PRE) + text + r.choice(POS_END if positive else NEG_END)


# Surface variation ----------------------------------------------------------------------------------------------
TEEN = [
    (r"\bkhông\b", ["ko", "k", "hông", "khong", "kh", "hok"]), (r"\bđược\b", ["dc", "đc", "dk"]),
    (r"\bsản phẩm\b", ["sp"]), (r"\bbao nhiêu\b", ["bn", "nhiêu", "bnhiu"]), (r"\bvậy\b", ["v", "z", "dzậy"]),
    (r"\brồi\b", ["r", "rùi", "oy"]), (r"\bmình\b", ["mk", "mik"]), (r"\bvới\b", ["vs"]),
    (r"\bcảm ơn\b", ["tks", "cám ơn", "thanks", "camon"]), (r"\bem\b", ["e"]), (r"\banh chị\b", ["a/c"]),
    (r"\bgì\b", ["j"]), (r"\bnhé\b", ["nhe", "nha", "nhá"]), (r"\bship\b", ["sip", "síp"]),
    (r"\bshop\b", ["sốp", "shp", "s"]), (r"\bquá\b", ["wá", "qá"]), (r"\bchuyển khoản\b", ["ck"]),
    (r"\bsố điện thoại\b", ["sđt", "sdt"]), (r"\bbiết\b", ["bít", "bik"]), (r"\bmuốn\b", ["mún"]),
    (r"\bnhiều\b", ["nhìu"]), (r"\bthích\b", ["thik"]), (r"\bluôn\b", ["lun"]),
]  # fmt: skip
EMO = {"positive": ["😍", "👍", "❤️", "🥰", "😊", ":))", "^^"], "negative": ["😡", "😤", "😭", "👎", ":(", "😞"]}
NEUTRAL_EMO = ["🙏", "?", "??", "...", " ạ"]


def _typo(r: random.Random, text: str) -> str:
    words = text.split()
    if not words:
        return text
    i = r.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = r.randrange(1, len(w) - 1)
        op = r.random()
        if op < 0.4:
            w = w[:j] + w[j + 1 :]
        elif op < 0.7:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        else:
            w = w + w[-1] * r.randint(2, 4)
    words[i] = w
    return " ".join(words)


def vary(r: random.Random, text: str, sentiment: str) -> str:
    if r.random() < 0.3:
        for pattern, subs in TEEN:
            if r.random() < 0.6:
                text = re.sub(pattern, lambda _m, subs=subs: r.choice(subs), text)
    if r.random() < 0.1:
        text = _typo(r, text)
    if r.random() < 0.15:
        emo = EMO.get(sentiment) if sentiment != "neutral" else NEUTRAL_EMO
        text = text + " " + r.choice(emo)
    if r.random() < 0.27:
        text = fold(text) if r.random() < 0.85 else text.lower()
    if r.random() < 0.45 and text:
        text = text[0].upper() + text[1:]
    if r.random() < 0.05:
        text = text.upper()
    return re.sub(r"\s+", " ", text).strip()


def _fill(r: random.Random, template: str, domain: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SLOTS[m.group(1)](r, domain), template)


def generate(seed: int = SEED, per_template: int = 6, reviews: int = 4200) -> list[dict]:
    r = random.Random(seed)
    rows: list[dict] = []
    seen: set[str] = set()
    domains = list(DOMAINS)

    def add(text: str, intent_: str, sentiment: str, domain: str, kind: str) -> None:
        text = re.sub(r"\s+", " ", text).strip(" ,")
        if not text or text.lower() in seen:
            return
        seen.add(text.lower())
        rows.append({"text": text, "intent": intent_, "sentiment": sentiment, "domain": domain, "kind": kind})

    for intent_, (default, templates) in T.items():
        for line in templates:
            template, _, sentiment = line.partition("|")
            sentiment = sentiment or default
            has_slots = "{" in template
            for _ in range(per_template if has_slots else max(2, per_template - 2)):
                domain = r.choice(domains)
                add(vary(r, _fill(r, template, domain), sentiment), intent_, sentiment, domain, "chat")
    for i in range(reviews):
        positive = i % 2 == 0
        domain = r.choice(domains)
        text = _review(r, positive, domain)
        sentiment = "positive" if positive else "negative"
        intent_ = "other" if positive else "complaint"
        if positive and r.random() < 0.12:
            text += r.choice([", cảm ơn shop", ". Thanks shop", ", cám ơn shop nhiều"])
            intent_ = "thanks_bye"
        add(vary(r, text, sentiment), intent_, sentiment, domain, "review")
    r.shuffle(rows)
    return rows


def write(rows: list[dict], path: Path = OUT) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "intent", "sentiment", "domain", "kind"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    out = Path(argv[0]) if argv else OUT
    rows = generate()
    write(rows, out)
    print(f"{len(rows)} rows → {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
