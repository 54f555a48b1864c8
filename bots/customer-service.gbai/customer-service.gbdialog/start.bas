REM Customer service: collects the details of a problem and opens a ticket.
REM The company name comes from the param-company row of config.csv.

TALK "Welcome to ${company} customer service!"
ADD SUGGESTION "Billing"
ADD SUGGESTION "Shipping"
ADD SUGGESTION "Other"
TALK "What can I help you with?"
HEAR topic AS "Billing", "Shipping", "Other"
SET CONTEXT "topic" AS topic

SELECT CASE topic
    CASE "Billing"
        TALK "What is your order number?"
        HEAR order AS INTEGER
        TALK "How much were you charged?"
        HEAR amount AS NUMBER
        summary = "billing question about order #" + order + " (charged " + FORMAT(amount, "0.00") + ")"
    CASE "Shipping"
        TALK "What is your order number?"
        HEAR order AS INTEGER
        TALK "When should it have arrived?"
        HEAR due AS DATE
        summary = "order #" + order + " was due on " + FORMAT(due, "dd/MM/yyyy")
    CASE ELSE
        TALK "Please describe the problem in one message."
        HEAR problem
        summary = TRIM(problem)
END SELECT

TALK "Which email address should we use to reach you?"
HEAR email AS EMAIL

ADD SUGGESTION "Yes"
ADD SUGGESTION "No"
TALK "Shall I open a ticket for: " + summary + "?"
HEAR confirm AS BOOLEAN
IF confirm THEN
    CALL OpenTicket(summary, email)
ELSE
    TALK "No problem, I did not record anything."
END IF
TALK "Thank you for contacting ${company}. Goodbye!"

SUB OpenTicket(text, contact)
    ' The counter lives in BOT MEMORY, shared by every user of this bot.
    ticket = GET BOT MEMORY("ticket-counter") + 1
    SET BOT MEMORY "ticket-counter", ticket
    SET USER MEMORY "last-ticket", ticket
    TALK "Ticket #" + ticket + " is open: " + text + "."
    TALK "We will write to " + LCASE(contact) + " within one business day."
END SUB
