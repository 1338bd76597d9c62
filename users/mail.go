package users

import (
	"context"
	"time"
)

// Mailer sends the messages of account recovery and onboarding. The host
// implements it (SMTP, a mail API, a queue) and builds the text and links;
// townhall decides when to send and what token to carry.
//
// Send runs inside the transaction that issues the message's token, so a
// message that fails to send leaves no token behind. Implementations should
// therefore hand the message to a queue and return, not talk SMTP: a slow
// Send holds the transaction open, and a reset request for a known email
// would take measurably longer than one for an unknown email.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// MessageKind names what a Message is for.
type MessageKind string

// The kinds of message.
const (
	MessagePasswordReset     MessageKind = "password_reset"     // Token goes to ResetPassword
	MessageEmailVerification MessageKind = "email_verification" // Token goes to VerifyEmail
	MessageWelcome           MessageKind = "welcome"            // no token
)

// Message is one email to send. Token is a single-use bearer secret: put it
// in the link and nowhere else (no logs).
type Message struct {
	Kind      MessageKind
	UserID    string
	To        string // the user's email address
	Token     string
	ExpiresAt time.Time // when Token stops working; zero without a token
}
