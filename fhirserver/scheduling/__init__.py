"""Scheduling (IHE ITI Scheduling: ITI-115 $find, ITI-116 $hold, ITI-117 $book; docs/scheduling.md).

One module per concept:

- state.py     a Slot's booking state (free, held until an instant, booked) and the server-owned mark
               naming the Appointment that holds it;
- slots.py     Schedule/[id]/$generate-slots: free Slots from the opening hours of the Schedule's actors;
- find.py      Appointment/$find: proposed Appointments built from free Slots (nothing stored);
- who.py       who may book a Slot for a patient (the patient, their proxy, the publishing hospital);
- book.py      Appointment/$hold and Appointment/$book (reschedule included): the Slots are claimed
               inside the store transaction that writes the Appointment;
- cancel.py    Appointment/[id]/$cancel: the Appointment cancelled and its Slots freed in one transaction.
"""
