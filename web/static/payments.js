// How the viewer pays. With the built-in test provider: the saved test card, as before.
// With Stripe (GET /api/payments/config says "stripe"): a card on file. The viewer saves a
// card once (a SetupIntent confirmed by Stripe.js from the setup's js_url; the card never
// reaches liveshop), then every buy sends payment_method "saved". A buy answered
// payment_requires_action is completed on the page (3-D Secure, confirmCardPayment with the
// answer's client_secret) and then sent again with the same idempotency key.
import { api } from "/static/common.js";

const TEST_CARD = "pm_card_ok";
let config = null;
let stripe = null;

export async function paymentConfig() {
  config ??= await api("GET", "/api/payments/config").catch(() => ({ provider: "test" }));
  return config;
}

export function paymentMethod() {
  return config?.provider === "stripe" ? "saved" : TEST_CARD;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error("Stripe.js did not load"));
    document.head.append(script);
  });
}

async function stripeJs(publishableKey, jsUrl) {
  if (!stripe) {
    if (!window.Stripe) await loadScript(jsUrl);
    stripe = window.Stripe(publishableKey);
  }
  return stripe;
}

// The viewer's saved cards: [{brand, last4, exp_month, exp_year, default}].
export async function savedCards(token) {
  return (await api("GET", "/api/payment-methods", { token })).cards;
}

// Mounts Stripe's card field into `mountNode`; resolves to `save()`, which confirms the
// SetupIntent with what the viewer typed and makes that card the default.
export async function cardForm(token, mountNode) {
  const setup = await api("POST", "/api/payment-methods/setup", { token });
  const js = await stripeJs(setup.publishable_key, setup.js_url);
  const card = js.elements().create("card");
  card.mount(mountNode);
  return async function save() {
    const { setupIntent, error } = await js.confirmCardSetup(setup.client_secret, { payment_method: { card } });
    if (error) throw Object.assign(new Error(error.message || "The card was refused"), { code: error.code || "card_refused" });
    return api("POST", "/api/payment-methods", { token, body: { payment_method_id: setupIntent.payment_method } });
  };
}

// A 402 payment_requires_action: the bank wants the buyer (3-D Secure). Resolves once the
// payment is authenticated; the caller then repeats the buy with the same key.
export async function completeAction(error) {
  const secret = error.extra?.client_secret || error.fields?.client_secret;
  if (!secret || config?.provider !== "stripe") throw error;
  const js = await stripeJs(config.publishable_key, config.js_url);
  const { error: refused } = await js.confirmCardPayment(secret);
  if (refused) throw Object.assign(new Error(refused.message || "Authentication failed"), { code: "payment_declined" });
}
