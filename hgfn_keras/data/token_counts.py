"""Token counts under a memory budget: exact while they fit, then Misra–Gries."""

import heapq

#: Distinct tokens a `TokenCounts` holds at most unless told otherwise. A Python
#: dict entry of a short token and its count takes about 100–150 bytes, so this is
#: a budget of roughly 60–80 MB per text modality.
DEFAULT_TOKEN_BUDGET = 500_000


class TokenCounts:
    """Counts tokens in one pass with memory bounded by `budget` distinct tokens.

    While at most `budget` distinct tokens have been seen, the counts are exact
    (`exact` is True). Past that, the table is pruned as in the mergeable
    Misra–Gries summary (Misra & Gries 1982; Agarwal et al. 2012, "Mergeable
    summaries"): when it holds more than `budget` tokens, the count of the
    (k+1)-th most frequent, k = `budget // 2`, is subtracted from every count and
    the tokens left at zero or below are dropped. Every count is then an
    undercount by at most `error_bound` (the sum of the subtracted amounts), and
    `error_bound` <= (n - sum of the kept counts) / (k + 1) <= n / (k + 1), n the
    number of tokens counted: any token more frequent than n / (k + 1) is kept.
    Memory: at most `budget` entries plus one batch's distinct tokens.

    Args:
        budget: the most distinct tokens held (>= 2).

    Example:

    >>> counts = TokenCounts(budget=4)
    >>> counts.update({"a": 5, "b": 3, "c": 1})
    >>> counts.exact, counts.counts["a"]
    (True, 5)
    >>> counts.update({"d": 1, "e": 1, "a": 2})
    >>> counts.exact, counts.error_bound, counts.counts["a"] >= 7 - counts.error_bound
    (False, 1, True)
    """

    def __init__(self, budget=DEFAULT_TOKEN_BUDGET):
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 2:
            raise ValueError(f"`budget` must be an integer >= 2. Received: budget={budget!r}")
        self.budget = budget
        self.counts = {}
        self.total = 0  # tokens counted, n
        self.error_bound = 0  # the most any count undercounts its token

    @property
    def exact(self):
        """Whether every count is exact (the distinct tokens have always fit)."""
        return self.error_bound == 0

    def update(self, batch_counts):
        """Adds `{token: count}` (one batch's counts) and prunes past the budget."""
        counts = self.counts
        for token, count in batch_counts.items():
            counts[token] = counts.get(token, 0) + int(count)
            self.total += int(count)
        if len(counts) > self.budget:
            keep = self.budget // 2
            # The (keep+1)-th largest count: subtracted from all, it leaves at most `keep`.
            cut = heapq.nlargest(keep + 1, counts.values())[-1]
            self.error_bound += cut
            self.counts = {t: c - cut for t, c in counts.items() if c > cut}

    def get_config(self):
        return {"budget": self.budget}
