-- 20k orders of 2,000 customers: enough for the planner to prefer orders_customer_idx.
INSERT INTO orders (customer_id, total)
SELECT g % 2000, (g * 7919) % 10000 FROM generate_series(1, 20000) AS g;
