-- name: orders_of_customer
-- calls-per-minute: 20000
-- params: {"customer_id": 42}
SELECT id, total FROM orders WHERE customer_id = %(customer_id)s;
