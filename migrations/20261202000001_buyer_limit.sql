-- Tickets one buyer may have for an event across orders (and live holds); NULL: the same as
-- max_per_order.
ALTER TABLE onsales ADD COLUMN max_per_buyer INTEGER CHECK (max_per_buyer BETWEEN 1 AND 1000);
