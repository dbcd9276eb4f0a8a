"""A starter FAQ for a Vietnamese fashion shop: the demo seeds it, admins edit it, `bench/faq.py` scores it.

Answers use variables the bot fills from the inbox's bot settings (`{store.hours}`, `{shipping.fee}`…) and from
the conversation (`{contact.name}`); see `agents/bots.py`.
"""

from __future__ import annotations

from typing import Any

DEFAULT_VARIABLES: dict[str, str] = {
    "store.name": "Shop Thời Trang Mai",
    "store.hours": "8h00 đến 21h30",
    "store.address": "123 Lê Lợi, phường Bến Thành, Quận 1, TP. Hồ Chí Minh",
    "shipping.fee": "30.000đ toàn quốc, miễn phí cho đơn từ 500.000đ",
    "shipping.time": "1–2 ngày nội thành TP.HCM, 3–5 ngày các tỉnh khác",
    "payment.methods": "COD (trả tiền khi nhận hàng), chuyển khoản Vietcombank 0071000123456 hoặc ví MoMo",
}

FAQ: list[dict[str, Any]] = [
    {
        "key": "store_hours",
        "intent": "store_info",
        "questions": [
            "Shop mở cửa mấy giờ?",
            "Giờ làm việc của shop thế nào?",
            "Mấy giờ shop đóng cửa?",
            "Chủ nhật shop có mở cửa không?",
            "Tối nay shop mở tới mấy giờ?",
        ],
        "answer": "Dạ shop mở cửa từ {store.hours} tất cả các ngày trong tuần, kể cả chủ nhật ạ.",
    },
    {
        "key": "store_address",
        "intent": "store_info",
        "questions": [
            "Shop ở đâu vậy?",
            "Cho mình xin địa chỉ cửa hàng",
            "Cửa hàng nằm ở đường nào?",
            "Shop có chi nhánh không?",
            "Mình muốn qua xem trực tiếp thì tới đâu?",
        ],
        "answer": "Dạ cửa hàng ở {store.address}, mình ghé xem trực tiếp nhé ạ.",
    },
    {
        "key": "shipping_fee",
        "intent": "shipping",
        "questions": [
            "Phí ship bao nhiêu?",
            "Tiền vận chuyển tính thế nào?",
            "Có freeship không?",
            "Ship về tỉnh thì mất bao nhiêu tiền ship?",
            "Đơn bao nhiêu thì được miễn phí giao hàng?",
        ],
        "answer": "Dạ phí giao hàng là {shipping.fee} ạ.",
    },
    {
        "key": "shipping_time",
        "intent": "shipping",
        "questions": [
            "Bao lâu thì nhận được hàng?",
            "Giao hàng mất mấy ngày?",
            "Ship ra Hà Nội mất bao lâu?",
            "Đặt hôm nay thì khi nào tới?",
            "Hàng giao trong bao nhiêu ngày?",
        ],
        "answer": "Dạ thời gian giao hàng khoảng {shipping.time} ạ.",
    },
    {
        "key": "payment",
        "intent": "payment",
        "questions": [
            "Thanh toán như thế nào?",
            "Có được trả tiền khi nhận hàng không?",
            "Shop có nhận COD không?",
            "Cho mình xin số tài khoản để chuyển khoản",
            "Thanh toán bằng MoMo được không?",
        ],
        "answer": "Dạ shop nhận {payment.methods} ạ.",
    },
    {
        "key": "size_guide",
        "intent": "ask_product_info",
        "questions": [
            "Tư vấn size giúp mình với",
            "Cao 1m60 nặng 50kg thì mặc size gì?",
            "Cho xin bảng size",
            "Size M hợp với người bao nhiêu ký?",
            "Mình nên chọn size nào?",
        ],
        "answer": (
            "Dạ bảng size tham khảo: S dưới 48kg, M 48–55kg, L 55–62kg, XL 62–70kg. "
            "Mình cho shop xin chiều cao cân nặng để tư vấn chuẩn hơn nhé ạ."
        ),
    },
    {
        "key": "return_policy",
        "intent": "return_refund",
        "questions": [
            "Chính sách đổi trả thế nào?",
            "Mặc không vừa có được đổi size không?",
            "Hàng lỗi có được hoàn tiền không?",
            "Nhận hàng không ưng có trả lại được không?",
            "Đổi hàng trong bao nhiêu ngày?",
        ],
        "answer": (
            "Dạ shop hỗ trợ đổi size hoặc đổi mẫu trong 7 ngày khi sản phẩm còn nguyên tem mác; "
            "hàng lỗi do shop được đổi mới hoặc hoàn tiền 100% ạ."
        ),
    },
    {
        "key": "promotion",
        "intent": "promotion",
        "questions": [
            "Shop đang có khuyến mãi gì không?",
            "Có mã giảm giá không?",
            "Mua 2 cái có được giảm không?",
            "Dạo này có sale không?",
            "Có ưu đãi cho khách mới không?",
        ],
        "answer": "Dạ tuần này shop giảm 10% cho đơn thứ hai và tặng mã FREESHIP cho khách mới ạ.",
    },
    {
        "key": "order_status",
        "intent": "order_status",
        "questions": [
            "Đơn hàng của mình tới đâu rồi?",
            "Kiểm tra giúp mình tình trạng đơn hàng",
            "Sao mình chưa nhận được hàng?",
            "Đơn của em đã gửi đi chưa?",
            "Cho mình xin mã vận đơn",
        ],
        "answer": "Dạ {contact.name} gửi giúp shop mã đơn hoặc số điện thoại đặt hàng để shop kiểm tra ngay ạ.",
    },
    {
        "key": "how_to_order",
        "intent": "order",
        "questions": [
            "Đặt hàng như thế nào?",
            "Muốn mua thì làm sao?",
            "Mình đặt mua qua đây được không?",
            "Hướng dẫn mình đặt hàng với",
        ],
        "answer": (
            "Dạ mình gửi giúp shop tên, số điện thoại, địa chỉ nhận hàng và mẫu, size, màu muốn lấy; "
            "shop lên đơn và gửi xác nhận ngay ạ."
        ),
    },
    {
        "key": "material",
        "intent": "ask_product_info",
        "questions": [
            "Áo chất liệu gì vậy?",
            "Vải có co giãn không?",
            "Hàng có giống hình không?",
            "Mặc có nóng không, vải có thấm mồ hôi không?",
            "Giặt máy có bị phai màu không?",
        ],
        "answer": (
            "Dạ áo may từ cotton 100%, co giãn nhẹ, thấm hút mồ hôi tốt và không phai màu khi giặt máy; "
            "hình là ảnh thật shop tự chụp ạ."
        ),
    },
    {
        "key": "wholesale",
        "intent": "ask_price",
        "questions": [
            "Shop có bán sỉ không?",
            "Lấy số lượng nhiều có giá sỉ không?",
            "Mình muốn nhập hàng về bán thì sao?",
            "Giá sỉ từ bao nhiêu cái?",
        ],
        "answer": "Dạ shop có giá sỉ từ 10 sản phẩm trở lên, mình để lại số điện thoại để bên kinh doanh gọi ạ.",
    },
]


async def install(inbox_id: int, *, enable: bool = True) -> int:
    """Give an inbox the starter FAQ and bot settings (the demo and tests use it); returns the entries made."""
    from agents.models import FaqEntry
    from inbox.models import Inbox

    inbox = await Inbox.get(id=inbox_id)
    for entry in FAQ:
        await FaqEntry.create(
            inbox_id=inbox_id, intent=entry["intent"], questions=entry["questions"], answer=entry["answer"]
        )
    bot = {
        "faq_enabled": enable,
        "welcome_message": "Chào {contact.name}, {store.name} có thể giúp gì cho mình ạ?",
        "away_message": "Dạ shop đang ngoài giờ làm việc ({store.hours}); nhân viên sẽ trả lời mình sớm nhất ạ.",
        "variables": DEFAULT_VARIABLES,
    }
    inbox.settings = {**(inbox.settings or {}), "bot": {**(inbox.settings or {}).get("bot", {}), **bot}}
    await inbox.save(update_fields=["settings"])
    return len(FAQ)
