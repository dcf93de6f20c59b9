"""Writes sample.xlsx, the workbook the edit_workbook example and the tests edit.

The file is committed; this script records how it was made. It uses openpyxl, a different
writer than the emulator's, so the example proves the emulator reads files it did not write.
Run: python3 -m pip install openpyxl && python3 examples/data/make_sample.py
"""

import datetime
import pathlib

import openpyxl

book = openpyxl.Workbook()

sales = book.active
sales.title = "Sales"
sales.append(["Region", "Quarter", "Units", "Revenue", "Booked on"])
rows = [
    ("North", "Q1", 120, 14400.5, datetime.date(2026, 1, 15)),
    ("South", "Q1", 95, 11875.0, datetime.date(2026, 2, 3)),
    ("East", "Q2", 143, 17160.25, datetime.date(2026, 4, 21)),
    ("West", "Q2", 77, 9240.0, datetime.date(2026, 5, 9)),
]
for row in rows:
    sales.append(row)
for cell in sales["E"][1:]:
    cell.number_format = "yyyy-mm-dd"

inventory = book.create_sheet("Inventory")
inventory.append(["Item", "In stock", "Reorder"])
inventory.append(["Widget", 340, False])
inventory.append(["Gadget", 12, True])
inventory.append(["Sprocket", 0, True])

notes = book.create_sheet("Notes")
notes["A1"] = "Edited through workbook-session; untouched cells must survive a save."
notes["A2"] = "Ünïcödé text stays as it is."

path = pathlib.Path(__file__).with_name("sample.xlsx")
book.save(path)
print(f"wrote {path}")
