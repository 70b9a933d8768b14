-- Wheelchair spaces (and their companion seats, if the venue marks them so): the seat map
-- marks them, the seat list can show only them.
ALTER TABLE seats ADD COLUMN accessible BOOLEAN NOT NULL DEFAULT false;
