"""Drives whole shifts through pyshtrih 2.0.6 (model class ShtrihM01F) and prints, as JSON, what the driver saw.

Usage: python drive_shift.py PORT

kkt-emulator/tests/it/pyshtrih.rs runs this against the built emulator and checks the figures against the
emulator's own journal. Every call goes through the driver's API, so the bytes on the wire are the driver's:
texts padded to the model's 48 bytes, answers read by the driver's fixed offsets into its Russian-named fields.
The script asserts nothing about the emulator itself; it stops at the first error the driver raises.

Shift 1 uses the legacy commands (E0 open, 80/82 lines, 85 close with each payment type, 40 X, 41 Z) plus the
FN commands the ShtrihM01F class offers (FF01, FF0A, FF0C, FF39, FF3F, FF40). Shift 2 opens and closes in the FN
(FF41 + FF0B, FF42 + FF43): the ShtrihM01F class lists FF41/FF42 but not FF0B/FF43, so those two are called
through the driver's own command functions (`pyshtrih.commands`), which the ShtrihAllCommands class exposes.
"""

import datetime
import json
import sys

import pyshtrih
from pyshtrih import commands as driver_commands
from pyshtrih import excepts

# Exactly the model's text width, so the test proves the whole padded field reaches the FN unshortened.
LONG_NAME = "Молоко пастеризованное 3,2% 930 мл, бутылка ПЭТ."
BUYER_EMAIL = "buyer@example.com"
# Tax group 1 is VAT 20 % and group 2 VAT 10 % in a factory-set table 6.
VAT20, VAT10 = 1, 2
SALE, RETURN_SALE = 0, 2


def jsonable(value):
    """Turns a driver answer value (bytearray, date, mode object, dict) into plain JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def le(data, start, size):
    """Reads a little-endian unsigned integer, as the driver's own `bytes_to_int` does."""
    return int.from_bytes(bytes(data[start:start + size]), "little")


class Run:
    """The device plus everything recorded for the JSON report."""

    def __init__(self, port):
        self.dev = pyshtrih.ShtrihM01F(port=port, baudrate=115200, timeout=5)
        self.report = {
            "driver_version": pyshtrih.__version__,
            "model_class": type(self.dev).__name__,
            "text_width": self.dev.DEFAULT_MAX_LENGTH,
            "long_name": LONG_NAME,
            "operations": [],
            "answers": {},
        }

    def answer(self, name, response):
        """Keeps one raw answer for the report, keyed by a step name."""
        self.report["answers"][name] = jsonable(response.params)
        return response

    def counters(self):
        """FN counters as the driver reads them: last FD (FF01), shift and receipt number (FF40)."""
        fs = self.dev.fs_state()
        shift = self.dev.fs_shift_params()
        return {
            "last_fd": fs["Номер последнего ФД"],
            "shift_open": shift["Состояние смены"] == "смена открыта",
            "shift": shift["Номер смены"],
            "receipt_no": shift["Номер чека"],
        }

    def record(self, op, **extra):
        """Records an operation with the counters the driver reads right after it."""
        entry = {"op": op}
        entry.update(self.counters())
        entry.update(extra)
        self.report["operations"].append(entry)

    def receipt(self, op, check_type, lines, **payments):
        """One receipt: 8D open, 80 or 82 per line, 85 close with the given payment sums."""
        self.dev.open_check(check_type)
        for text, quantity_milli, price, tax in lines:
            if check_type == RETURN_SALE:
                self.dev.return_sale((text, quantity_milli, price), tax1=tax)
            else:
                self.dev.sale((text, quantity_milli, price), tax1=tax)
        closed = self.dev.close_check(**payments)
        self.record(op, change=closed["Сдача"], payments=payments)

    def shift_one(self):
        """The legacy shift: E0, receipts paid by each payment type, a cancelled one, a return, X and Z."""
        dev = self.dev
        self.answer("open_shift", dev.open_shift())
        self.record("open_shift")
        self.answer("print_string", dev.print_string("Добро пожаловать!"))

        # Receipt with the 48-byte name, a second line, a buyer e-mail (FF0C tag 1008) and change.
        dev.open_check(SALE)
        dev.sale((LONG_NAME, 1000, 12990), tax1=VAT20)
        dev.sale(("Хлеб ржаной", 2000, 4550), tax1=VAT10)
        dev.send_tlv_struct(pyshtrih.FD({1008: BUYER_EMAIL}).dump())
        closed = self.answer("close_check_cash", dev.close_check(cash=30000))
        self.record("sale_cash", change=closed["Сдача"], payments={"cash": 30000})

        for op, payment in (
            ("sale_type2", "payment_type2"),
            ("sale_type3", "payment_type3"),
            ("sale_type4", "payment_type4"),
        ):
            self.receipt(op, SALE, [("Кофе в зёрнах", 1000, 25000, VAT20)], **{payment: 25000})
        self.receipt(
            "sale_mixed", SALE, [("Чай листовой", 3000, 5000, VAT20)], cash=10000, payment_type2=5000
        )

        # A receipt cancelled with 88: no fiscal document.
        dev.open_check(SALE)
        dev.sale(("Отменённый товар", 1000, 100), tax1=VAT20)
        self.answer("cancel_check", dev.cancel_check())
        self.record("cancelled")

        self.receipt("return_cash", RETURN_SALE, [(LONG_NAME, 1000, 12990, VAT20)], cash=12990)

        exchange = self.answer("fs_info_exchange", dev.fs_info_exchange())
        unconfirmed = self.answer("fs_unconfirmed", dev.fs_unconfirmed_document_count())
        self.report["before_z"] = {
            "ofd_queue": exchange["Количество сообщений для ОФД"],
            "ofd_first_fd": exchange["Номер документа для ОФД первого в очереди"],
            "unconfirmed": unconfirmed["Количество неподтверждённых ФД"],
        }
        self.answer("x_report", dev.x_report())
        self.record("x_report")
        self.answer("z_report", dev.z_report())
        self.record("z_report")

    def shift_two(self):
        """The FN-path shift: FF41 + FF0B, one receipt, FF42 + FF43, with the FDs the FN answers."""
        dev = self.dev
        dev.fs_begin_open_shift()
        opened = self.answer("fs_open_shift", driver_commands.fs_open_shift(dev))
        self.record(
            "fn_open_shift",
            answer_shift=opened["Номер новой открытой смены"],
            answer_fd=opened["Номер ФД"],
            answer_fpd=opened["Фискальный признак"],
        )
        self.receipt("sale_shift2", SALE, [("Вода питьевая 0,5 л", 1000, 4900, VAT20)], cash=4900)
        dev.fs_begin_close_shift()
        closed = self.answer("fs_close_shift", driver_commands.fs_close_shift(dev))
        self.record(
            "fn_close_shift",
            answer_shift=closed["Номер только что закрытой смены"],
            answer_fd=closed["Номер ФД"],
            answer_fpd=closed["Фискальный признак"],
        )

    def find_documents(self):
        """FF0A for every FD the FN reports, then one past the end, which must be refused."""
        last_fd = self.dev.fs_state()["Номер последнего ФД"]
        found = []
        for fd in range(1, last_fd + 1):
            doc = self.dev.fs_find_document_by_num(fd)
            data = doc["Данные фискального документа"]
            # Data: date and time (5), FD number (4), fiscal sign (4), then per type (receipt: operation
            # type (1) and total (5); shift reports: shift number (2)).
            entry = {
                "fd": fd,
                "doc_type": doc["Тип фискального документа"],
                "ticket_received": doc["Получена ли квитанция из ОФД"],
                "data_fd": le(data, 5, 4),
                "fpd": le(data, 9, 4),
            }
            if entry["doc_type"] == 3:
                entry["operation_type"] = data[13]
                entry["total"] = le(data, 14, 5)
            else:
                entry["shift"] = le(data, 13, 2)
            found.append(entry)
        self.report["found"] = found
        try:
            self.dev.fs_find_document_by_num(last_fd + 1)
            self.report["past_end_error"] = 0
        except excepts.Error as exc:
            self.report["past_end_error"] = exc.code

    def run(self):
        dev = self.dev
        dev.connect()
        self.report["device_name"] = dev.name
        self.answer("full_state", dev.full_state())
        self.shift_one()
        self.shift_two()
        self.find_documents()
        unconfirmed = dev.fs_unconfirmed_document_count()
        self.report["final"] = dict(
            self.counters(), unconfirmed=unconfirmed["Количество неподтверждённых ФД"]
        )
        dev.disconnect()
        return self.report


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: drive_shift.py PORT")
    if len(LONG_NAME) != pyshtrih.ShtrihM01F.DEFAULT_MAX_LENGTH:
        sys.exit("LONG_NAME must be exactly the model's text width")
    print(json.dumps(Run(sys.argv[1]).run(), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
