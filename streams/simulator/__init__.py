"""A seeded customer population with realistic behaviour, known churn and noisy delivery.

:func:`simulate` builds the input records (``Purchase``, ``Engagement``, ``SupportEvent``,
``ProfileChange``, ``BillingEvent``) of a whole customer base over a period, delivers them
the way a real feed does (some twice, some late, a few broken) and says which customers
really churned. It feeds the backtest (``churnwatch backtest``), load tests and demos;
``churnwatch simulate`` writes it to JSON Lines or to the input topics. The population is
not tuned to any detector: personas, rhythms, quiet spells and churn dates are drawn from
broad, documented distributions. docs/simulator.md describes it in full.

The package has one module per job: :mod:`.model` (personas, delivery kinds, record
fields, the public types), :mod:`.customer` (one customer's state and plan), its
behaviour (:mod:`.profile`, :mod:`.purchases`, :mod:`.engagement`, :mod:`.support`,
:mod:`.billing`), :mod:`.history` (one customer's records and truth), :mod:`.noise` (noisy
delivery), :mod:`.population` (:func:`simulate`), :mod:`.writers` (JSON Lines and the
truth CSV), :mod:`.produce` (to Kafka) and :mod:`.summary` (the printed tables).

Segments and personas
---------------------
About 70% of the customers are B2C shoppers and 30% B2B subscribers (``b2b_share``).
Each customer follows one persona, drawn with these shares within its segment:

===================  =====  =====  =======  ===============================================
persona              b2c    b2b    overall  behaviour
===================  =====  =====  =======  ===============================================
steady               38%    46%    40.4%    own purchase rhythm and engagement, mild drift,
                                            0-2 holidays of 1-3 weeks; never churns
champion             7%     7%     7%       frequent, high spend, promoter, refers others,
                                            takes more products; never churns
seasonal (b2c)       9%     -      6.3%     buys in bursts (summer, Black Friday to
                                            Christmas), quiet in between but opens emails
one_time (b2c)       7%     -      4.9%     appears during the period, buys once, engages a
                                            little for 1-5 weeks, then nothing: churns
newcomer             8%     8%     8%       signs up during the period; 65% settle in, 35%
                                            fail onboarding and leave 30-90 days in
declining            14%    17%    14.9%    3-12 week decline (wider gaps, thinner and
                                            quieter engagement, 35% with souring feedback,
                                            b2b: team stops using it, half downgrade),
                                            then stops; b2b invoices run to the cancellation
sudden               4%     4%     4%       healthy until the day it leaves, no warning
recovering           7%     7%     7%       declines for 2-5 weeks, stays low 1-4 weeks,
                                            comes back to its old rhythm; never churns
complaining          6%     5%     5.7%     tickets pile up, negative sentiment, low CSAT,
                                            detractor NPS for 3-12 weeks while activity
                                            fades, then leaves
involuntary (b2b)    -      3%     0.9%     uses the product as usual, but a renewal's
                                            payment fails, 2-4 retries fail too and the
                                            subscription is cancelled 10-41 days later
downgrading (b2b)    -      3%     0.9%     downgrades its plan, then its team uses the
                                            product less; 40% leave 6-26 weeks later
===================  =====  =====  =======  ===============================================

B2B subscribers (the customers with an MRR) also send billing events: monthly renewals,
now and then a failed payment that a retry recovers, a downgrade with each plan downgrade
and a cancellation when they leave.

The departure day of a leaving persona is drawn uniformly from its earliest possible day
to 90 days after the horizon, so departures are spread over the period and some fall after
it (those customers are not churned in the truth).

Ground truth
------------
A customer has churned when it leaves for good within the horizon; ``churned_at`` is the
time of its last genuine event (noise excluded). A customer whose history simply reaches
the end of the period, or who would leave only after it, has not churned.

Noise
-----
Every genuine record is delivered once, at its event time unless it is late. On top of
that, with the shares
of :class:`SimulationConfig`: a duplicate delivery (same record, 1 s to 6 h later); a late
delivery (1 minute to 48 hours after its event time, within the default 3-day allowed
lateness) or a very late one (4 to 10 days, beyond it); a :class:`Malformed` item next to
the record (bytes that cannot be decoded); an invalid copy under a new event id (a value
the pipeline must reject). Noise never removes or alters a genuine record.

Determinism
-----------
Each customer has its own random generators, seeded from (seed, customer index): one for
its behaviour and one for the noise on its records. A customer's history does not depend
on the other customers, nor on the noise shares. The same configuration always gives the
same items in the same order, and the writers give byte-identical files.
"""

from streams.simulator.history import iter_customers
from streams.simulator.model import (
    B2B_MIX,
    B2C_MIX,
    DEFAULT_START,
    DELIVERY_NAMES,
    DUPLICATE,
    FIELDS,
    INVALID,
    LATE,
    MALFORMED,
    ON_TIME,
    PERSONAS,
    TYPES,
    VERY_LATE,
    Counts,
    Item,
    Malformed,
    Simulation,
    SimulationConfig,
    TruthRow,
    customer_id,
    json_record,
)
from streams.simulator.population import simulate
from streams.simulator.produce import ProduceError, produce_items
from streams.simulator.summary import persona_table, summary_table
from streams.simulator.writers import TRUTH_HEADER, iter_jsonl, write_jsonl, write_truth

__all__ = [
    "B2B_MIX",
    "B2C_MIX",
    "DEFAULT_START",
    "DELIVERY_NAMES",
    "DUPLICATE",
    "FIELDS",
    "INVALID",
    "LATE",
    "MALFORMED",
    "ON_TIME",
    "PERSONAS",
    "TRUTH_HEADER",
    "TYPES",
    "VERY_LATE",
    "Counts",
    "Item",
    "Malformed",
    "ProduceError",
    "Simulation",
    "SimulationConfig",
    "TruthRow",
    "customer_id",
    "iter_customers",
    "iter_jsonl",
    "json_record",
    "persona_table",
    "produce_items",
    "simulate",
    "summary_table",
    "write_jsonl",
    "write_truth",
]
